"""Reading curated snapshots: ``<snapshots_dir>/<id>/{train,heldout}.parquet`` + ``manifest.json``, by id.

The one reader that curate (is this snapshot already there?), training (its dataset) and evaluation
(the held-out instances) share, with one error type, :class:`SnapshotError`. The directory comes from
``Settings.snapshots_dir``. The row format is the contract in ``docs/data-contracts.md``; a split is
checked against its manifest's row count and for the columns the caller needs. This module never
writes a snapshot (:mod:`swerl_core.curate.snapshot` does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.errors import SwerlError

if TYPE_CHECKING:
    import pyarrow as pa

SPLITS = ("train", "heldout")


class SnapshotError(SwerlError):
    """A snapshot is missing (``missing``), or its manifest or a split is unreadable or inconsistent."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def snapshot_dir(snapshots_dir: Path, snapshot_id: str) -> Path:
    """The directory of snapshot ``snapshot_id``."""
    return Path(snapshots_dir) / snapshot_id


def read_manifest(snapshots_dir: Path, snapshot_id: str) -> dict[str, Any]:
    """The ``manifest.json`` of snapshot ``snapshot_id``, checked to name that id.

    Raises :class:`SnapshotError` with a one-line message: ``missing`` when there is no such snapshot
    (the message lists the known ones), otherwise when the file is unreadable or names another id.
    """
    path = snapshot_dir(snapshots_dir, snapshot_id)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.name for p in Path(snapshots_dir).glob("*") if (p / "manifest.json").exists())
        hint = f"known: {', '.join(known)}" if known else "no snapshot curated yet"
        raise SnapshotError(
            f"snapshot {snapshot_id!r} not found under {snapshots_dir} ({hint})", missing=True
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"snapshot {snapshot_id!r} has an unreadable manifest.json: {detail}") from None
    if not isinstance(manifest, dict) or manifest.get("id") != snapshot_id:
        raise SnapshotError(f"snapshot {snapshot_id!r}: manifest.json does not name id {snapshot_id!r}")
    return manifest


def read_split(snapshots_dir: Path, snapshot_id: str, split: str, columns: Sequence[str] = ()) -> pa.Table:
    """One split (``train`` or ``heldout``) as an Arrow table, checked against the manifest and for ``columns``."""
    import pyarrow.parquet as pq

    manifest = read_manifest(snapshots_dir, snapshot_id)
    path = snapshot_dir(snapshots_dir, snapshot_id) / f"{split}.parquet"
    if split not in SPLITS or not path.exists():
        raise SnapshotError(f"snapshot {snapshot_id!r} has no {split}.parquet")
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SnapshotError(f"snapshot {snapshot_id!r} {split}.parquet lacks column(s) {', '.join(missing)}")
    expected = manifest.get(f"{split}_rows")
    if expected is not None and expected != table.num_rows:
        raise SnapshotError(
            f"snapshot {snapshot_id!r} {split}.parquet has {table.num_rows} rows, manifest says {expected}"
        )
    return table
