"""Snapshots on disk and in the store: ``$SWERL_HOME/snapshots/<id>/{train,heldout}.parquet`` + ``manifest.json``.

Owns the row schema of ``docs/data-contracts.md``, the snapshot id (a digest of the inputs and the
config, so unchanged input gives the same id), the atomic write (everything goes to a temporary
directory that is renamed into place, so a crash never leaves half a snapshot) and the row in the
``snapshots`` table. It never decides which rows belong in a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from swerl_core.curate import CurateError
from swerl_core.curate.funnel import StageCount

FORMAT_VERSION = 1  # bump when curation logic changes what a given input and config produce
SPLITS = ("train", "heldout")
_FILES = pa.list_(pa.struct([("path", pa.string()), ("content", pa.string())]))
ROW_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("repo", pa.string()),
        ("pr_number", pa.int64()),
        ("issue_numbers", pa.list_(pa.int64())),
        ("problem_statement", pa.string()),
        ("hints", pa.string()),
        ("code_context", _FILES),
        ("oracle_new_content", _FILES),
        ("oracle_patch", pa.string()),
        ("test_patch", pa.string()),
        ("base_commit", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("merged_at", pa.timestamp("us", tz="UTC")),
        ("languages", pa.list_(pa.string())),
    ]
)
"""The snapshot row format (docs/data-contracts.md)."""


@dataclass(frozen=True)
class Snapshot:
    """What :func:`swerl_core.curate.pipeline.curate` produced: the snapshot and how it was reached."""

    id: str
    name: str
    path: Path
    train_rows: int
    heldout_rows: int
    funnel: tuple[StageCount, ...]
    created: bool  # False: the same input and config already had this snapshot, nothing was written
    notes: dict[str, int]

    @property
    def manifest_path(self) -> Path:
        """The snapshot's ``manifest.json``."""
        return self.path / "manifest.json"


def snapshot_id(fingerprint: dict[str, Any], config: dict[str, Any]) -> str:
    """The id of the snapshot of ``fingerprint`` (inputs) under ``config``: 16 hex digits of a SHA-256."""
    payload = json.dumps({"format": FORMAT_VERSION, "inputs": fingerprint, "config": config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def rows_table(rows: pl.DataFrame) -> pa.Table:
    """``rows`` as an Arrow table in exactly :data:`ROW_SCHEMA` (column order and types)."""
    missing = [name for name in ROW_SCHEMA.names if name not in rows.columns]
    if missing:
        raise CurateError(f"internal: snapshot rows lack {', '.join(missing)}")
    table = rows.select(ROW_SCHEMA.names).to_arrow()
    return table.cast(ROW_SCHEMA)


class ManifestError(CurateError):
    """A snapshot's ``manifest.json`` is missing (``missing``), unreadable or names another snapshot."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_manifest(path: Path, snapshot_id: str | None = None) -> dict[str, Any]:
    """The manifest of snapshot directory ``path``, checked to name ``snapshot_id`` (default: the directory's name).

    The one reader of manifests (training reads them through it too). Raises :class:`ManifestError`
    with a one-line message when the file is missing, is not a JSON object or names another id.
    """
    snapshot = path.name if snapshot_id is None else snapshot_id
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"snapshot {snapshot!r} has no manifest.json under {path}", missing=True) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ManifestError(f"snapshot {snapshot!r} has an unreadable manifest.json: {detail}") from None
    if not isinstance(manifest, dict) or manifest.get("id") != snapshot:
        raise ManifestError(f"snapshot {snapshot!r}: manifest.json does not name id {snapshot!r}")
    lacking = [key for key in MANIFEST_KEYS if key not in manifest]
    if lacking:
        raise ManifestError(f"snapshot {snapshot!r}: manifest.json lacks {', '.join(lacking)}")
    return manifest


MANIFEST_KEYS = ("id", "train_rows", "heldout_rows")
"""Keys every reader of a manifest relies on."""
CURATED_KEYS = ("name", "created_at", "config", "source_watermarks")
"""Keys a manifest written by curate also holds (``files``, each split's SHA-256 and rows, since this version)."""


def snapshot_damage(path: Path, manifest: dict[str, Any]) -> str | None:
    """What is wrong with the curated snapshot at ``path`` against its manifest; None when intact.

    Checks that the manifest holds curate's keys and that each split exists, has the manifest's row
    count and, when the manifest records it, the same SHA-256.
    """
    lacking = [key for key in CURATED_KEYS if key not in manifest]
    if lacking:
        return f"manifest.json lacks {', '.join(lacking)}"
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    for split in SPLITS:
        name = f"{split}.parquet"
        if not (path / name).is_file():
            return f"{name} is missing"
        try:
            rows = pq.read_metadata(path / name).num_rows
        except (OSError, pa.ArrowException) as exc:
            return f"{name} is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if rows != manifest.get(f"{split}_rows"):
            return f"{name} has {rows} rows, the manifest says {manifest.get(f'{split}_rows')}"
        recorded = (files.get(name) or {}).get("sha256") if isinstance(files.get(name), dict) else None
        if recorded is not None and recorded != _sha256(path / name):
            return f"{name} does not match the SHA-256 in the manifest"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_snapshot(directory: Path, splits: dict[str, pl.DataFrame], manifest: dict[str, Any]) -> Path:
    """Write both splits and the manifest under ``directory/<manifest id>/`` atomically; return that path.

    Files go to a temporary sibling directory first, which is renamed into place in one step.
    """
    final = directory / manifest["id"]
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".tmp-{manifest['id']}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        files = {}
        for split in SPLITS:
            pq.write_table(rows_table(splits[split]), temp / f"{split}.parquet")
            files[f"{split}.parquet"] = {"sha256": _sha256(temp / f"{split}.parquet"), "rows": splits[split].height}
        manifest = {**manifest, "files": files}
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_dir(temp)
        if final.exists():  # a leftover or a damaged snapshot (checked by the caller): replace it
            shutil.rmtree(final)
        os.rename(temp, final)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return final


def record_snapshot(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any], manifest_path: Path) -> bool:
    """Insert the snapshot's row into the ``snapshots`` table unless it is there; True when inserted."""
    exists = con.execute("SELECT count(*) FROM snapshots WHERE id = ?", [manifest["id"]]).fetchall()
    if exists[0][0]:
        return False
    con.execute(
        "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            manifest["id"],
            manifest["name"],
            datetime.fromisoformat(manifest["created_at"]),
            manifest["train_rows"],
            manifest["heldout_rows"],
            str(manifest_path),
            json.dumps(manifest["config"], sort_keys=True),
            json.dumps(manifest["source_watermarks"], sort_keys=True),
        ],
    )
    return True


def now_iso() -> str:
    """The current UTC time in ISO 8601, for ``created_at``."""
    return datetime.now(UTC).isoformat()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
