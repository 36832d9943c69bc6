"""Storage of raw ingest data in DuckDB: schema migrations, upserts, watermarks, runs, snapshots table.

Owns the on-disk database and its writer lock; must never reach the network or git.
"""

from swerl_core.store.migrations import MIGRATIONS, Migration, apply_migrations, schema_version
from swerl_core.store.records import (
    BlobRecord,
    CommentRecord,
    FileRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RepoRecord,
    RepoStatus,
    RunTotals,
    SkippedPR,
)
from swerl_core.store.store import Store, StoreError, lock_path

__all__ = [
    "MIGRATIONS",
    "BlobRecord",
    "CommentRecord",
    "FileRecord",
    "IssueRecord",
    "LinkRecord",
    "Migration",
    "PullRequestRecord",
    "RepoRecord",
    "RepoStatus",
    "RunTotals",
    "SkippedPR",
    "Store",
    "StoreError",
    "apply_migrations",
    "lock_path",
    "schema_version",
]
