"""Training's view of a curated snapshot: its rows as in-memory :class:`datasets.Dataset` objects.

Reading and checking go through :mod:`swerl_core.snapshots` (the one reader; a bad or missing snapshot
is its :class:`~swerl_core.snapshots.SnapshotError`). Rows are handed over unchanged; nothing is written
to the Hugging Face cache, and this module never writes a snapshot (curate does, and so does the demo's
fixture builder, :mod:`swerl_core.demo.sample_snapshot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from swerl_core.snapshots import SPLITS, read_split

if TYPE_CHECKING:
    from datasets import Dataset

# Columns training reads; the contract has more, and they pass through untouched.
REQUIRED_COLUMNS = ("instance_id", "problem_statement", "code_context", "oracle_new_content")


def load_snapshot(snapshots_dir: Path, snapshot_id: str) -> tuple[Dataset, Dataset]:
    """The ``(train, heldout)`` rows of a snapshot under ``snapshots_dir``; raises ``SnapshotError``."""
    from datasets import Dataset

    train, heldout = (Dataset(read_split(snapshots_dir, snapshot_id, split, REQUIRED_COLUMNS)) for split in SPLITS)
    return train, heldout
