"""Shared storage: snapshots and checkpoints published to an S3-compatible bucket and fetched back, verified.

Training pods, evaluation pods and the registry run on different machines; when ``storage.uri`` is set
(``s3://BUCKET[/PREFIX]``) they exchange files through it:

- ``<uri>/snapshots/<id>/`` — a curated snapshot, as curate wrote it (plain Parquet + ``manifest.json``);
- ``<uri>/checkpoints/<run>/final/`` — a training run's consolidated model.

A published directory is immutable and complete only once its index, :data:`INDEX` (every file's
relative path, size and SHA-256), exists: files go up first, the index last, so an interrupted upload
never looks complete. A fetch reads the index, downloads every file into a temporary sibling, checks
each size and hash, and renames the directory into place only when all match; anything else is
refused with a :class:`~swerl_core.errors.StorageError`.

Credentials are never settings: boto3 reads them from the standard ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` variables (or an attached role); this module never
reads, logs or records them. DuckDB never lives here: it stays the single-writer store next to the flows.
The ``storage`` settings section and its ``s3://`` URI grammar live in :mod:`swerl_core.config.storage`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.config.storage import Location, parse_location
from swerl_core.errors import StorageError
from swerl_core.locks import LockFolder
from swerl_core.paths import is_safe_relative
from swerl_core.snapshots import file_sha256, snapshot_dir

if TYPE_CHECKING:
    from swerl_core.config import Settings, StorageConfig

log = logging.getLogger("swerl.storage")

INDEX = "swerl-files.json"
"""Written last on publish: the list of files (path, size, SHA-256) that makes a publication complete."""
INDEX_FORMAT = 1
FETCH_WAIT_S = 3600.0
"""How long a fetch waits for another process downloading the same publication (a checkpoint of many GB)."""
SNAPSHOTS, CHECKPOINTS = "snapshots", "checkpoints"


def snapshot_location(cfg: StorageConfig, snapshot_id: str) -> Location:
    """Where snapshot ``snapshot_id`` is published under ``storage.uri``."""
    return parse_location(cfg.uri).child(SNAPSHOTS, snapshot_id)


def checkpoint_location(cfg: StorageConfig, run_name: str, name: str) -> Location:
    """Where checkpoint folder ``name`` (e.g. ``final``) of run ``run_name`` is published under ``storage.uri``."""
    return parse_location(cfg.uri).child(CHECKPOINTS, run_name, name)


def s3_client(cfg: StorageConfig) -> Any:
    """A boto3 S3 client for ``storage.endpoint_url`` (AWS when empty); credentials come from the environment."""
    import boto3
    from botocore.config import Config

    retries = {"max_attempts": cfg.max_attempts, "mode": "standard"}
    config = Config(retries=retries, connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s)
    return boto3.client("s3", endpoint_url=cfg.endpoint_url or None, config=config)


def publish_dir(cfg: StorageConfig, local_dir: Path, where: Location, meta: Mapping[str, str] | None = None) -> str:
    """Upload every file under ``local_dir`` to ``where``, then its index; return ``where``'s URI.

    Files whose name is ``manifest.json`` go up after the others (a reader that trusts the manifest
    finds the data already there), the index last. A location whose index already exists is left
    untouched: publications are immutable.
    """
    files = sorted(
        (p for p in Path(local_dir).rglob("*") if p.is_file() and p.name != INDEX),
        key=lambda p: (p.name == "manifest.json", p.as_posix()),
    )
    if not files:
        raise StorageError(f"nothing to publish: {local_dir} holds no files")
    entries: list[dict[str, Any]] = [
        {"path": p.relative_to(local_dir).as_posix(), "size": p.stat().st_size, "sha256": file_sha256(p)} for p in files
    ]
    client = s3_client(cfg)
    with _s3_errors(where):
        existing = _read_index(client, where, missing_ok=True)
        if existing is not None:
            if _content(existing.get("files")) != _content(entries):
                raise StorageError(
                    f"{where.uri} already holds a different publication: refused (publications never change; "
                    "publish under another name)"
                )
            log.info("%s is already published with the same files; left as it is", where.uri)
            return where.uri
        for path, entry in zip(files, entries, strict=True):
            client.upload_file(str(path), where.bucket, where.child(entry["path"]).key)
        published_at = datetime.now(UTC).isoformat()
        index = {"format": INDEX_FORMAT, "published_at": published_at, "meta": dict(meta or {}), "files": entries}
        body = json.dumps(index, indent=2, sort_keys=True).encode()
        client.put_object(Bucket=where.bucket, Key=where.child(INDEX).key, Body=body)
    log.info("published %s (%d files)", where.uri, len(entries))
    return where.uri


def _content(entries: Any) -> set[tuple[Any, Any, Any]]:
    """What a file index says a publication holds: (path, size, SHA-256) of every file."""
    if not isinstance(entries, list):
        return set()
    return {(e.get("path"), e.get("size"), e.get("sha256")) for e in entries if isinstance(e, dict)}


def fetch_dir(cfg: StorageConfig, where: Location, target: Path, locks: LockFolder) -> dict[str, Any]:
    """Download the publication at ``where`` into ``target`` (verified, atomically); return its index.

    Nothing happens when ``target`` already holds a complete fetch (its own copy of the index). Every
    file is checked against the index's size and SHA-256 before the directory is renamed into place,
    under a lock in ``locks`` so that processes fetching the same thing wait for one download (at most
    :data:`FETCH_WAIT_S`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with locks.for_path("fetch", target).hold(FETCH_WAIT_S):
        if (target / INDEX).is_file():
            return read_local_index(target)
        for leftover in target.parent.glob(f".{target.name}.partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a fetch killed earlier (the lock says none is running)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        partial.chmod(0o755)  # mkdtemp's 0700 would hide the files from pods running as another user
        try:
            try:
                index = _download_verified(s3_client(cfg), where, partial)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise StorageError(f"{where.uri}: its file index names a file and a folder alike: refused") from None
            (partial / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
            if target.exists():
                discard_dir(target)  # a local leftover nothing vouches for
            os.rename(partial, target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    log.info("fetched %s into %s", where.uri, target)
    return index


def read_local_index(directory: Path) -> dict[str, Any]:
    """The index a completed fetch left in ``directory``."""
    return json.loads((Path(directory) / INDEX).read_text(encoding="utf-8"))


def _download_verified(client: Any, where: Location, into: Path) -> dict[str, Any]:
    with _s3_errors(where):
        index = _read_index(client, where, missing_ok=False)
        assert index is not None
        for entry in index["files"]:
            relative = entry["path"]
            path = into / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(where.bucket, where.child(relative).key, str(path))
            except Exception as exc:
                if _not_found(exc):
                    raise StorageError(f"{where.child(relative).uri} is missing: {where.uri} is incomplete") from None
                raise
            if path.stat().st_size != entry["size"] or file_sha256(path) != entry["sha256"]:
                raise StorageError(
                    f"{where.child(relative).uri} does not match the SHA-256 in its {INDEX} "
                    "(corrupted or overwritten): refused"
                )
    return index


def _read_index(client: Any, where: Location, *, missing_ok: bool) -> dict[str, Any] | None:
    try:
        body = client.get_object(Bucket=where.bucket, Key=where.child(INDEX).key)["Body"].read()
    except Exception as exc:
        if not _not_found(exc):
            raise
        if missing_ok:
            return None
        listed = client.list_objects_v2(Bucket=where.bucket, Prefix=where.key + "/", MaxKeys=1)
        if listed.get("KeyCount", 0):
            raise StorageError(f"{where.uri} holds a partial upload (no {INDEX}, written last): refused") from None
        raise StorageError(f"nothing is published at {where.uri}") from None
    return _checked_index(body, where)


def _checked_index(body: bytes, where: Location) -> dict[str, Any]:
    try:
        index: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        index = {}
    if not isinstance(index, dict):
        index = {}
    files = index.get("files")
    valid = isinstance(files, list) and index.get("format") == INDEX_FORMAT and all(map(_valid_entry, files))
    if not valid:
        raise StorageError(f"{where.child(INDEX).uri} is not a valid file index: refused")
    return index


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and is_safe_relative(entry.get("path"))
        and entry["path"] != INDEX
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
    )


def _not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in ("404", "NoSuchKey", "NotFound")


@contextmanager
def _s3_errors(where: Location) -> Iterator[None]:
    """Turn a boto3/botocore failure into one :class:`StorageError` line naming the location."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("botocore", "boto3", "s3transfer", "urllib3"):
            raise
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise StorageError(f"shared storage {where.uri} failed: {type(exc).__name__}: {detail}") from None


def discard_dir(path: Path) -> None:
    """Remove directory ``path`` (if present) so that no reader ever sees it half-deleted: renamed aside first."""
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def publish_snapshot(settings: Settings, snapshot_id: str) -> str | None:
    """Publish snapshot ``snapshot_id`` from ``settings.snapshots_dir``; its URI, or ``None`` without storage."""
    if not settings.storage.uri:
        return None
    where = snapshot_location(settings.storage, snapshot_id)
    return publish_dir(
        settings.storage, snapshot_dir(settings.snapshots_dir, snapshot_id), where, {"snapshot_id": snapshot_id}
    )


def ensure_snapshot(settings: Settings, snapshot_id: str) -> None:
    """Fetch snapshot ``snapshot_id`` into ``settings.snapshots_dir`` when it is missing there and storage is set.

    A snapshot already present locally is used as it is; without ``storage.uri`` nothing happens and
    the caller's own read reports a missing snapshot.
    """
    local = snapshot_dir(settings.snapshots_dir, snapshot_id)
    if not settings.storage.uri or (local / "manifest.json").is_file():
        return
    where = snapshot_location(settings.storage, snapshot_id)
    fetch_dir(settings.storage, where, local, LockFolder.of_home(settings.home))
    try:
        named = json.loads((local / "manifest.json").read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError, AttributeError):
        named = None
    if named != snapshot_id:
        discard_dir(local)
        raise StorageError(
            f"{where.uri} does not hold snapshot {snapshot_id} (its manifest.json names another): refused"
        )


def publish_checkpoint(settings: Settings, model_dir: Path, run_name: str, run_id: str | None) -> str | None:
    """Publish a run's ``final/`` model folder; its ``s3://`` URI, or ``None`` without storage."""
    if not settings.storage.uri:
        return None
    where = checkpoint_location(settings.storage, run_name, Path(model_dir).name)
    return publish_dir(settings.storage, model_dir, where, {"run_name": run_name, "mlflow_run_id": run_id or ""})


def fetch_checkpoint(cfg: StorageConfig, uri: str, cache_dir: Path) -> tuple[Path, str | None]:
    """A local copy of the checkpoint published at ``uri`` under ``cache_dir``; and its MLflow run id, if known.

    The fetch's lock lives beside ``cache_dir`` (``$SWERL_HOME/locks`` for ``$SWERL_HOME/models``).
    """
    where = parse_location(uri)
    if not where.key:
        raise StorageError(f"{uri} names a bucket, not a checkpoint")
    target = Path(cache_dir) / "s3" / where.bucket / where.key
    index = fetch_dir(cfg, where, target, LockFolder.beside(cache_dir))
    if not (target / "config.json").is_file():
        raise StorageError(f"{uri} is not a model (no config.json)")
    meta = index.get("meta")
    run_id = meta.get("mlflow_run_id") if isinstance(meta, dict) else None
    return target, str(run_id) if run_id else None
