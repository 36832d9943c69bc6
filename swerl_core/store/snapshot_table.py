"""Curate's table: ``snapshots``, one row per curated snapshot (its counts, config and where its manifest is).

Curate writes one row at the end of a run, after its long read of ingest's tables; the snapshot's data
itself lives in Parquet files (:mod:`swerl_core.snapshots`), never here. This module must never write
another stage's table.
"""

from __future__ import annotations

import duckdb

from swerl_core.store.records import SnapshotRecord
from swerl_core.store.tables import StageTables, insert_row, writes


class SnapshotTable(StageTables):
    """The ``snapshots`` rows curate writes: ``store.snapshots``."""

    @writes
    def record(self, con: duckdb.DuckDBPyConnection, record: SnapshotRecord) -> bool:
        """Insert a snapshot's row unless one with its id is there; True when inserted."""
        return insert_row(con, "snapshots", record, conflict="(id) DO NOTHING") > 0
