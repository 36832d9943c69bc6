"""Writing snapshots: ``<settings.snapshots_dir>/<id>/{train,heldout}.parquet`` + ``manifest.json``.

Owns the row schema of ``docs/data-contracts.md``, the snapshot id (a digest of the inputs and the
config, so unchanged input gives the same id), the atomic write (everything goes to a temporary
``.tmp-<id>-<pid>`` folder that is renamed into place, so a crash never leaves half a snapshot; the
writer holds the snapshot's :func:`write_lock` meanwhile, so the next curate can tell the folder of a
killed writer from that of a live one and :func:`remove_stale_temp_dirs` removes only the former) and the
``snapshots`` row a manifest becomes (:func:`snapshot_record`; the store inserts it). Reading is
:mod:`swerl_core.snapshots`. It never decides which rows belong in a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from swerl_core.curate.errors import CurateError
from swerl_core.curate.funnel import StageCount
from swerl_core.errors import LockTimeout
from swerl_core.locks import LockFolder, ProcessLock
from swerl_core.snapshot_schema import ROW_SCHEMA
from swerl_core.snapshots import SPLITS, file_sha256
from swerl_core.store.records import SnapshotRecord

log = logging.getLogger("swerl.curate")

# Bump when curation logic changes what a given input and config produce (2: unsafe paths dropped, quoted headers;
# 3: validated instances, the execution columns).
FORMAT_VERSION = 3
TEMP_PREFIX = ".tmp-"
"""A snapshot being written lives in ``<TEMP_PREFIX><id>-<pid>`` beside the snapshots until it is complete."""
WRITE_WAIT_S = 600.0  # a curate writing the same snapshot (same input and config) at the same time is waited for


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
    uri: str | None = None  # where it is published on shared storage (``storage.uri``), None when local only
    execution: dict[str, int] | None = None  # rows per validation status; None when no row was validated

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


def write_lock(directory: Path, sid: str) -> ProcessLock:
    """The lock a curate holds while it writes snapshot ``sid`` under ``directory``, its temporary folder included."""
    return LockFolder.beside(directory).for_path("snapshot", directory / sid)


def write_snapshot(directory: Path, splits: dict[str, pl.DataFrame], manifest: dict[str, Any]) -> Path:
    """Write both splits and the manifest under ``directory/<manifest id>/`` atomically; return that path.

    Files go to a temporary sibling directory first, which is renamed into place in one step, all under
    the snapshot's :func:`write_lock`.
    """
    final = directory / manifest["id"]
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f"{TEMP_PREFIX}{manifest['id']}-{os.getpid()}"
    with write_lock(directory, manifest["id"]).hold(WRITE_WAIT_S):
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        try:
            files = {}
            for split in SPLITS:
                pq.write_table(rows_table(splits[split]), temp / f"{split}.parquet")
                digest = file_sha256(temp / f"{split}.parquet")
                files[f"{split}.parquet"] = {"sha256": digest, "rows": splits[split].height}
            manifest = {**manifest, "files": files}
            text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            (temp / "manifest.json").write_text(text, encoding="utf-8")
            _fsync_dir(temp)
            if final.exists():  # a leftover or a damaged snapshot (checked by the caller): replace it
                shutil.rmtree(final)
            os.rename(temp, final)
            _fsync_dir(directory)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return final


def remove_stale_temp_dirs(directory: Path) -> list[str]:
    """Remove the temporary folders that curates killed while writing left under ``directory``; their names.

    A writer holds its snapshot's :func:`write_lock` for as long as its temporary folder exists, and the
    kernel drops the lock of a process that dies (even by ``kill -9``), so a folder whose lock is free
    belongs to no live curate: it is removed while holding that lock. A live writer's folder is left alone.
    """
    removed = []
    for temp in sorted(Path(directory).glob(f"{TEMP_PREFIX}*")):
        lock = write_lock(directory, temp.name.removeprefix(TEMP_PREFIX).rpartition("-")[0])
        try:
            lock.acquire(0)
        except LockTimeout:
            continue  # its curate is still writing
        try:
            shutil.rmtree(temp)
        except FileNotFoundError:
            continue  # renamed into place by a writer that finished since the listing
        except OSError as exc:
            log.warning("cannot remove %s, left by a curate killed while writing: %s", temp, exc)
            continue
        finally:
            lock.release()
        removed.append(temp.name)
    return removed


def snapshot_record(manifest: dict[str, Any], manifest_path: Path) -> SnapshotRecord:
    """The ``snapshots`` row of a manifest (``store.snapshots.record`` inserts it)."""
    return SnapshotRecord(
        id=manifest["id"],
        name=manifest["name"],
        created_at=datetime.fromisoformat(manifest["created_at"]),
        train_rows=manifest["train_rows"],
        heldout_rows=manifest["heldout_rows"],
        manifest_path=str(manifest_path),
        config_json=json.dumps(manifest["config"], sort_keys=True),
        source_watermarks_json=json.dumps(manifest["source_watermarks"], sort_keys=True),
    )


def now_iso() -> str:
    """The current UTC time in ISO 8601, for ``created_at``."""
    return datetime.now(UTC).isoformat()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
