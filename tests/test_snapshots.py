"""The shared snapshot reader: which folders are snapshots, and the verification every reader goes through."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swerl_core.config import load_settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot
from swerl_core.evaluate.instances import heldout_instances
from swerl_core.snapshots import SnapshotError, default_snapshot, read_manifest, snapshot_ids, verify_snapshot
from swerl_core.train.snapshot import load_snapshot


def _alter_keeping_rows(path: Path) -> None:
    """Rewrite a split with every problem statement changed: the same row count, other content."""
    table = pq.read_table(path)
    index = table.column_names.index("problem_statement")
    pq.write_table(table.set_column(index, "problem_statement", pa.array(["altered"] * table.num_rows)), path)


def _with_created_at(snapshot: Path, created: str) -> None:
    manifest = snapshot / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "created_at": created}))


def test_a_curates_temporary_folder_is_neither_listed_nor_taken_as_the_newest(swerl_home: Path) -> None:
    settings = load_settings(overrides={"home": swerl_home})
    _with_created_at(write_sample_snapshot(swerl_home, "older"), "2026-01-01T00:00:00+00:00")
    # What a curate killed between writing its manifest and renaming the folder leaves: complete, and newer.
    newer = write_sample_snapshot(swerl_home, "newer")
    _with_created_at(newer, "2026-02-01T00:00:00+00:00")
    newer.rename(settings.snapshots_dir / ".tmp-newer-4242")
    assert snapshot_ids(settings.snapshots_dir) == ["older"]
    assert default_snapshot(settings, None) == "older"
    with pytest.raises(SnapshotError, match=r"known: older\)$"):
        read_manifest(settings.snapshots_dir, "nope")


READERS: dict[str, tuple[Callable[[Path, str], Any], str]] = {
    "train": (load_snapshot, "train"),
    "evaluate": (heldout_instances, "heldout"),  # registration evaluates: the same reader
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_refuses_a_split_altered_with_the_same_row_count(swerl_home: Path, reader: str) -> None:
    read, split = READERS[reader]
    snapshots_dir = write_sample_snapshot(swerl_home).parent
    read(snapshots_dir, SAMPLE_SNAPSHOT_ID)  # intact: read without complaint
    _alter_keeping_rows(snapshots_dir / SAMPLE_SNAPSHOT_ID / f"{split}.parquet")
    with pytest.raises(SnapshotError) as refused:
        read(snapshots_dir, SAMPLE_SNAPSHOT_ID)
    message = str(refused.value)
    assert message == (
        f"snapshot {SAMPLE_SNAPSHOT_ID!r} is damaged: {split}.parquet does not match the SHA-256 in the manifest "
        "(changed after curate wrote it); curate again to rebuild it"
    ), message


def test_an_altered_split_is_refused_even_with_its_modification_time_put_back(swerl_home: Path) -> None:
    snapshots_dir = write_sample_snapshot(swerl_home).parent
    path = snapshots_dir / SAMPLE_SNAPSHOT_ID / "train.parquet"
    time.sleep(2.5)  # long enough unchanged for the process to keep the file's SHA-256 instead of hashing it again
    verify_snapshot(snapshots_dir, SAMPLE_SNAPSHOT_ID)
    before = path.stat()
    _alter_keeping_rows(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(SnapshotError, match="train.parquet does not match the SHA-256"):
        verify_snapshot(snapshots_dir, SAMPLE_SNAPSHOT_ID)


def test_a_file_the_manifest_lists_must_exist_whichever_split_is_read(swerl_home: Path) -> None:
    snapshots_dir = write_sample_snapshot(swerl_home).parent
    (snapshots_dir / SAMPLE_SNAPSHOT_ID / "train.parquet").unlink()
    with pytest.raises(SnapshotError, match=r"is damaged: train.parquet is missing \(the manifest lists it\)"):
        heldout_instances(snapshots_dir, SAMPLE_SNAPSHOT_ID)


def test_a_manifest_recording_no_sha256_is_refused(swerl_home: Path) -> None:
    snapshot = write_sample_snapshot(swerl_home)
    manifest = json.loads((snapshot / "manifest.json").read_text())
    del manifest["files"]
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="manifest.json records no SHA-256 for train.parquet; curate again"):
        load_snapshot(snapshot.parent, SAMPLE_SNAPSHOT_ID)
