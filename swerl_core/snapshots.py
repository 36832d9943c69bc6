"""Reading curated snapshots: ``<snapshots_dir>/<id>/{train,heldout}.parquet`` + ``manifest.json``, by id.

The one reader that curate (is this snapshot already there?), training (its dataset, and which snapshot
to take when none is named) and evaluation (the held-out instances; registration evaluates) share, with one
error type, :class:`SnapshotError`; and :func:`as_files`, the one reading of a row's file lists. The directory
comes from ``Settings.snapshots_dir``. The row format is the contract in ``docs/data-contracts.md``. Every read
of a split goes through :func:`verify_snapshot`: the files the manifest lists exist, and the split has the
manifest's row count and SHA-256, so data changed after curate wrote it is refused, never trained or evaluated
on. Only folders named as a snapshot id are snapshots: a hidden ``.tmp-*`` folder of a curate still writing (or
killed while writing) is never listed. This module never writes a snapshot (:mod:`swerl_core.curate.snapshot`
does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.errors import SnapshotError

if TYPE_CHECKING:
    import pyarrow as pa

    from swerl_core.config import Settings

log = logging.getLogger("swerl.snapshots")

SPLITS = ("train", "heldout")
MANIFEST_KEYS = ("id", "train_rows", "heldout_rows")
"""Keys every reader of a manifest relies on."""
CURATED_KEYS = ("name", "created_at", "config", "source_watermarks")
"""Keys a manifest written by curate also holds (``files``: each split's SHA-256 and rows)."""


SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A snapshot id is one plain name: never a path (no ``/``, no leading dot, so never ``..``)."""


def is_plain_name(name: object) -> bool:
    """Whether ``name`` is one plain name (a snapshot id, a file a manifest lists): never a path, never hidden."""
    return isinstance(name, str) and bool(SNAPSHOT_ID.match(name)) and ".." not in name


def snapshot_dir(snapshots_dir: Path, snapshot_id: str) -> Path:
    """The directory of snapshot ``snapshot_id``; :class:`SnapshotError` when the id is not a plain name."""
    if not is_plain_name(snapshot_id):
        raise SnapshotError(f"{str(snapshot_id)[:80]!r} is not a snapshot id (letters, digits, '.', '_', '-'; no path)")
    return Path(snapshots_dir) / snapshot_id


def snapshot_ids(snapshots_dir: Path) -> list[str]:
    """The ids of the snapshots under ``snapshots_dir``, sorted: folders named as an id that hold a manifest.

    A curate writes into a hidden ``.tmp-<id>-<pid>`` folder and renames it into place when complete, so
    a folder of one still writing, or killed while writing, is never among them.
    """
    return sorted(
        path.parent.name for path in Path(snapshots_dir).glob("*/manifest.json") if is_plain_name(path.parent.name)
    )


def read_manifest(snapshots_dir: Path, snapshot_id: str) -> dict[str, Any]:
    """The ``manifest.json`` of snapshot ``snapshot_id``, checked to name that id.

    Raises :class:`SnapshotError` with a one-line message: ``missing`` when there is no such snapshot
    (the message lists the known ones), otherwise when the file is unreadable or names another id.
    """
    path = snapshot_dir(snapshots_dir, snapshot_id)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = snapshot_ids(snapshots_dir)
        hint = f"known: {', '.join(known)}" if known else "no snapshot curated yet"
        raise SnapshotError(
            f"snapshot {snapshot_id!r} not found under {snapshots_dir} ({hint})", missing=True
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"snapshot {snapshot_id!r} has an unreadable manifest.json: {detail}") from None
    if not isinstance(manifest, dict) or manifest.get("id") != snapshot_id:
        raise SnapshotError(f"snapshot {snapshot_id!r}: manifest.json does not name id {snapshot_id!r}")
    lacking = [key for key in MANIFEST_KEYS if key not in manifest]
    if lacking:
        raise SnapshotError(f"snapshot {snapshot_id!r}: manifest.json lacks {', '.join(lacking)}")
    return manifest


def default_snapshot(settings: Settings, recipe_snapshot: str | None) -> str | None:
    """The snapshot a training run takes when none is named: the recipe's when it exists under
    ``settings.snapshots_dir`` (or shared storage is set: it is fetched from there), else the newest curated
    there (by the manifest's ``created_at``; never a curate's temporary folder), else the recipe's as written
    (``None`` when the recipe names none). A damaged manifest is never picked.
    """
    local = recipe_snapshot and (settings.snapshots_dir / recipe_snapshot / "manifest.json").is_file()
    if recipe_snapshot and (local or settings.storage.uri):
        return recipe_snapshot
    created: dict[str, str] = {}
    for name in snapshot_ids(settings.snapshots_dir):
        try:
            created[name] = str(read_manifest(settings.snapshots_dir, name)["created_at"])
        except (SnapshotError, KeyError):
            continue
    if not created:
        return recipe_snapshot
    newest = max(created, key=lambda name: created[name])
    log.info("snapshot: %s (the newest curated)", newest)
    return newest


def snapshot_damage(
    snapshots_dir: Path, snapshot_id: str, manifest: dict[str, Any], splits: Sequence[str] = SPLITS
) -> str | None:
    """What is wrong with the data of snapshot ``snapshot_id`` against its ``manifest``; None when intact.

    Every file the manifest lists (``files``) must exist; each split of ``splits`` must be readable Parquet
    with the manifest's row count and the SHA-256 the manifest records for it (a split it records none for
    is damage too: nothing could tell an altered file from the one curate wrote).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = snapshot_dir(snapshots_dir, snapshot_id)
    recorded_files = manifest.get("files")
    files = recorded_files if isinstance(recorded_files, dict) else {}
    for name in sorted(files):
        if not is_plain_name(name):
            return f"manifest.json lists {name[:80]!r}, which is not a file name of the snapshot"
        if not (path / name).is_file():
            return f"{name} is missing (the manifest lists it)"
    for split in splits:
        name = f"{split}.parquet"
        if not (path / name).is_file():
            return f"{name} is missing"
        try:
            rows = pq.read_metadata(path / name).num_rows
        except (OSError, pa.ArrowException) as exc:
            return f"{name} is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if rows != manifest.get(f"{split}_rows"):
            return f"{name} has {rows} rows, manifest says {manifest.get(f'{split}_rows')}"
        entry = files.get(name)
        recorded = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(recorded, str):
            return f"manifest.json records no SHA-256 for {name}"
        if recorded != file_sha256(path / name):
            return f"{name} does not match the SHA-256 in the manifest (changed after curate wrote it)"
    return None


def verify_snapshot(snapshots_dir: Path, snapshot_id: str, splits: Sequence[str] = SPLITS) -> dict[str, Any]:
    """The manifest of snapshot ``snapshot_id``, once ``splits`` are checked against it (:func:`snapshot_damage`).

    The check every reader of a snapshot goes through (training, evaluation, registration's evaluation).
    Raises :class:`SnapshotError` in one line naming the snapshot and the file, and saying to curate again.
    """
    manifest = read_manifest(snapshots_dir, snapshot_id)
    damage = snapshot_damage(snapshots_dir, snapshot_id, manifest, splits)
    if damage is not None:
        raise SnapshotError(f"snapshot {snapshot_id!r} is damaged: {damage}; curate again to rebuild it")
    return manifest


_SETTLED_S = 2.0
_HASHED: dict[tuple[str, int, int, int, int, int], str] = {}  # a file version -> its SHA-256 (file_sha256)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB chunks; once per process per version of the file.

    A version is the file's resolved path, inode, size, modification and change times. A digest is kept only
    for a file unchanged for a few seconds before it was read: a write within the same timestamp tick as the
    read would otherwise leave every time as it was (the "racy git" problem), and hashing that file again
    is what tells the two apart.
    """
    stat, read_at = os.stat(path), time.time()
    key = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key in _HASHED:
        return _HASHED[key]
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if read_at - max(stat.st_mtime, stat.st_ctime) > _SETTLED_S:
        _HASHED[key] = digest.hexdigest()
    return digest.hexdigest()


def read_split(snapshots_dir: Path, snapshot_id: str, split: str, columns: Sequence[str] = ()) -> pa.Table:
    """One split (``train`` or ``heldout``) as an Arrow table, verified (:func:`verify_snapshot`) and checked
    for ``columns``."""
    import pyarrow.parquet as pq

    if split not in SPLITS:
        raise SnapshotError(f"{split!r} is not a split of a snapshot ({', '.join(SPLITS)})")
    verify_snapshot(snapshots_dir, snapshot_id, (split,))
    table = pq.read_table(snapshot_dir(snapshots_dir, snapshot_id) / f"{split}.parquet")
    table = with_execution_columns(table)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SnapshotError(f"snapshot {snapshot_id!r} {split}.parquet lacks column(s) {', '.join(missing)}")
    return table


def with_execution_columns(table: pa.Table) -> pa.Table:
    """``table`` with the validation columns a snapshot written before them lacks (or holds as nulls, as rows
    written by hand do): ``not_validated``, no tests."""
    import pyarrow as pa

    from swerl_core.snapshot_schema import NOT_VALIDATED, ROW_SCHEMA

    for name in ("execution", "fail_to_pass", "pass_to_pass"):
        field = ROW_SCHEMA.field(name)
        empty = NOT_VALIDATED if name == "execution" else []
        if name not in table.column_names:
            table = table.append_column(field, pa.array([empty] * table.num_rows, type=field.type))
        elif table.column(name).null_count:
            values = [empty if value is None else value for value in table.column(name).to_pylist()]
            at = table.column_names.index(name)
            table = table.set_column(at, field, pa.array(values, type=field.type))
    return table


def as_files(entries: Sequence[Mapping[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """A snapshot's list of ``{path, content}`` structs as the ``{path: content}`` dict the reward takes."""
    if isinstance(entries, Mapping):
        return dict(entries)
    return {entry["path"]: entry["content"] for entry in entries}
