"""Storage in DuckDB: one database file that every stage shares, with one table family per stage.

The core (:mod:`.store`: connection, sessions, the writer lock, the schema check; :mod:`.integrity`,
:mod:`.migrations`) carries the table families a stage reaches from its store: ``store.ingest``
(:mod:`.ingest_tables`), ``store.snapshots`` (:mod:`.snapshot_table`, curate), ``store.evaluations``
(:mod:`.evaluation_table`, evaluate). Stages open it with :meth:`Store.for_settings`. Every table's
writes live here beside its schema; this package must never reach the network or git.
"""

from swerl_core.store.errors import StoreError
from swerl_core.store.evaluation_table import EvaluationTable
from swerl_core.store.ingest_tables import IngestTables
from swerl_core.store.lock import lock_path
from swerl_core.store.migrations import MIGRATIONS, Migration, apply_migrations, schema_version
from swerl_core.store.records import (
    BlobRecord,
    CommentRecord,
    EvaluationRecord,
    FileRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RepoRecord,
    RepoStatus,
    RunTotals,
    SkippedPR,
    SnapshotRecord,
    UnlinkedPull,
)
from swerl_core.store.snapshot_table import SnapshotTable
from swerl_core.store.store import Store

__all__ = [
    "MIGRATIONS",
    "BlobRecord",
    "CommentRecord",
    "EvaluationRecord",
    "EvaluationTable",
    "FileRecord",
    "IngestTables",
    "IssueRecord",
    "LinkRecord",
    "Migration",
    "PullRequestRecord",
    "RepoRecord",
    "RepoStatus",
    "RunTotals",
    "SkippedPR",
    "SnapshotTable",
    "SnapshotRecord",
    "Store",
    "StoreError",
    "UnlinkedPull",
    "apply_migrations",
    "lock_path",
    "schema_version",
]
