"""Reading a curate snapshot (``$SWERL_HOME/snapshots/<id>/``) for training: one function, by id.

The row format is the contract in ``docs/data-contracts.md``; this module checks the columns training
needs and hands the rows over unchanged as in-memory :class:`datasets.Dataset` objects (nothing is
written to the Hugging Face cache). It never writes a snapshot: curate does, and so does the fixture
builder in :mod:`.sample_snapshot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.train import TrainError

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

# Columns training reads; the contract has more, and they pass through untouched.
REQUIRED_COLUMNS = ("instance_id", "problem_statement", "code_context", "oracle_new_content")
SPLITS = ("train", "heldout")


def snapshot_dir(home: Path, snapshot_id: str) -> Path:
    """The directory of snapshot ``snapshot_id`` under ``home``."""
    return Path(home) / "snapshots" / snapshot_id


def read_manifest(home: Path, snapshot_id: str) -> dict[str, Any]:
    """The snapshot's ``manifest.json``, read by curate's reader; a missing or bad one is a :class:`TrainError`."""
    from swerl_core.curate.snapshot import ManifestError
    from swerl_core.curate.snapshot import read_manifest as read_snapshot_manifest

    path = snapshot_dir(home, snapshot_id)
    try:
        return read_snapshot_manifest(path, snapshot_id)
    except ManifestError as exc:
        if not exc.missing:
            raise TrainError(str(exc)) from None
    known = sorted(p.name for p in path.parent.glob("*") if (p / "manifest.json").exists())
    hint = f"known: {', '.join(known)}" if known else "no snapshot curated yet"
    raise TrainError(f"snapshot {snapshot_id!r} not found under {path.parent} ({hint})") from None


def load_snapshot(home: Path, snapshot_id: str) -> tuple[Dataset, Dataset]:
    """The ``(train, heldout)`` rows of a snapshot; raises :class:`TrainError` naming what is wrong."""
    from datasets import Dataset

    train, heldout = (Dataset(read_split(home, snapshot_id, split)) for split in SPLITS)
    return train, heldout


def read_split(home: Path, snapshot_id: str, split: str, columns: Sequence[str] = REQUIRED_COLUMNS) -> pa.Table:
    """One split of a snapshot as an Arrow table, checked against its manifest and for ``columns``."""
    import pyarrow.parquet as pq

    manifest = read_manifest(home, snapshot_id)
    path = snapshot_dir(home, snapshot_id) / f"{split}.parquet"
    if not path.exists():
        raise TrainError(f"snapshot {snapshot_id!r} has no {split}.parquet")
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise TrainError(f"snapshot {snapshot_id!r} {split}.parquet lacks column(s) {', '.join(missing)}")
    expected = manifest.get(f"{split}_rows")
    if expected is not None and expected != table.num_rows:
        raise TrainError(
            f"snapshot {snapshot_id!r} {split}.parquet has {table.num_rows} rows, manifest says {expected}"
        )
    return table


def as_files(entries: Sequence[Mapping[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """A snapshot's list of ``{path, content}`` structs as the ``{path: content}`` dict the reward takes."""
    if isinstance(entries, Mapping):
        return dict(entries)
    return {entry["path"]: entry["content"] for entry in entries}
