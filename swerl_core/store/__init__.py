"""Storage in DuckDB: schema migrations, raw ingest data (upserts, watermarks, runs), snapshot and evaluation rows.

Owns the on-disk database, its writer lock and how stages share it (:meth:`Store.shared`); every
table's insert lives here beside its schema. Must never reach the network or git.
"""

from swerl_core.store.errors import StoreError
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
from swerl_core.store.store import Store, lock_path

__all__ = [
    "MIGRATIONS",
    "BlobRecord",
    "CommentRecord",
    "EvaluationRecord",
    "FileRecord",
    "IssueRecord",
    "LinkRecord",
    "Migration",
    "PullRequestRecord",
    "RepoRecord",
    "RepoStatus",
    "RunTotals",
    "SkippedPR",
    "SnapshotRecord",
    "Store",
    "StoreError",
    "UnlinkedPull",
    "apply_migrations",
    "lock_path",
    "schema_version",
]
