"""The :class:`Store`: one DuckDB file on disk holding everything ingest collects, snapshots and evaluations.

It owns the connection, the single-writer lock, schema upgrades and every write (natural keys and
upserts, so a rerun never duplicates a row; each table's insert sits here, beside the schema in
:mod:`.migrations`). It must never talk to GitHub or git, and never holds secrets.

Sharing one file between stages that run at once (a scheduled ingest during an evaluation…). DuckDB
lets one process open a file read-write *or* any number of processes open it read-only, never both,
and it takes that decision when a process opens the file. So stages open the store with
:meth:`Store.shared`, which keeps nothing open between operations:

- a write (every writing method, :meth:`Store.transaction`, :meth:`Store.writing`) takes the writer
  lock ``<db>.lock`` (an ``flock`` holding the writer's PID), opens the file read-write, writes,
  closes it and releases the lock. It waits for another writer up to ``lock_timeout_s``
  (``store.lock_timeout_s``), then fails naming the holder's PID;
- a read (every reading method, :meth:`Store.reading`) takes no lock: it opens the file read-only,
  reads, and closes it. When a write is in progress the open is refused; it retries until that
  short write ends (at most ``lock_timeout_s``). A writer likewise retries while readers hold the file.

Writes are therefore short (an ingest batch, one snapshot row, one evaluation row), a long stage holds
nothing while it fetches, trains or generates, and nobody waits for another stage, only for another
stage's write. Long reads (curate's pass over every PR) keep the file open read-only for as long as
they read; writes wait for them within the same bound. :meth:`Store.open` keeps one connection (and,
writable, the writer lock) for its whole life: for tools and tests that own the database.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from swerl_core.store.errors import StoreError, WriterLockBusy
from swerl_core.store.lock import WriterLock, holder_pid, writer_active
from swerl_core.store.migrations import MIGRATIONS, Migration, apply_migrations, schema_version
from swerl_core.store.records import (
    BlobRecord,
    CommentRecord,
    EvaluationRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RepoRecord,
    RepoStatus,
    RunTotals,
    SkippedPR,
    SnapshotRecord,
    UnlinkedPull,
    has_linked_issue,
)

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _reads(method: _Method) -> _Method:
    """Run ``method`` inside a read session (a no-op when a connection is already open)."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._session(write=False):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _writes(method: _Method) -> _Method:
    """Run ``method`` inside a write session (writer lock + read-write file; a no-op inside one)."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._session(write=True):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Store:
    """A swerl DuckDB database: :meth:`Store.shared` for stages, :meth:`Store.open` to own the file."""

    def __init__(
        self,
        path: Path,
        con: duckdb.DuckDBPyConnection | None,
        lock: WriterLock | None,
        *,
        shared: bool = False,
        lock_timeout_s: float = 0.0,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = con
        self._lock = lock
        self._shared = shared
        self._session_read_only = False
        self._lock_timeout_s = lock_timeout_s
        self._migrations = migrations
        self._current = False  # schema checked at this release's version
        self._column_cache: dict[str, list[tuple[str, pa.DataType]]] = {}

    @classmethod
    def shared(
        cls, path: Path | str, *, lock_timeout_s: float = 0.0, migrations: tuple[Migration, ...] = MIGRATIONS
    ) -> Store:
        """The database at ``path`` for a stage that shares it: nothing stays open between operations.

        Each write takes the writer lock and the file for its own duration (waiting up to
        ``lock_timeout_s`` for another writer); each read opens the file read-only for its own
        duration (retrying up to ``lock_timeout_s`` while a write is in progress). The first write
        creates and upgrades the database; a read of a missing one raises :class:`StoreError`, and so
        does a damaged file, at once.
        """
        path = Path(path)
        if path.is_file():
            check_intact(path)  # a damaged database is reported before a stage starts its work
        return cls(path, None, None, shared=True, lock_timeout_s=lock_timeout_s, migrations=migrations)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        read_only: bool = False,
        migrations: tuple[Migration, ...] = MIGRATIONS,
        lock_timeout_s: float = 0.0,
    ) -> Store:
        """Open (creating and upgrading when writable) the database at ``path``.

        A writer takes the lock file ``<path>.lock`` first, waiting up to ``lock_timeout_s`` for another
        live process holding it; then this raises :class:`StoreError` "database is in use by PID …".
        A read-only store takes no lock.
        """
        path = Path(path)
        lock = None if read_only else _take_writer_lock(path, lock_timeout_s)
        if read_only and not path.exists():
            raise StoreError(f"no database at {path}: nothing has been ingested yet")
        if path.exists() and not path.is_file():
            if lock is not None:
                lock.release()
            raise StoreError(f"{path} is not a database file")
        try:
            con = _open_checked(path, read_only, 0.0)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store = cls(path, con, lock, lock_timeout_s=lock_timeout_s, migrations=migrations)
        try:
            store._prepare(con, read_only)
        except BaseException:
            store.close()
            raise
        return store

    def _prepare(self, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        try:
            con.execute("SET TimeZone = 'UTC'")
            if self._current:  # checked (and upgraded) by an earlier session of this store
                return
            self._check_version(self._migrations, read_only)
            if not read_only:
                apply_migrations(con, self._migrations)
            self._current = True
        except duckdb.Error as exc:
            raise StoreError(f"cannot prepare database {self.path}: {_first_line(exc)}") from None

    @contextmanager
    def _session(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None:
            if write and self._session_read_only:
                raise StoreError(f"internal: a write to {self.path} inside a read of it")
            yield self._con
            return
        if not self._shared:
            raise StoreError(f"database {self.path} is closed")
        if not write and not self.path.exists():
            raise StoreError(f"no database at {self.path}: nothing has been ingested yet")
        lock = _take_writer_lock(self.path, self._lock_timeout_s) if write else None
        try:
            opener = _connect if self._current else _open_checked  # verify the file once per store
            con = opener(self.path, not write, self._lock_timeout_s)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._con, self._lock, self._session_read_only = con, lock, not write
        try:
            self._prepare(con, not write)
            yield con
        finally:
            self._con, self._lock, self._session_read_only = None, None, False
            try:
                con.close()
            finally:
                if lock is not None:
                    lock.release()

    def reading(self) -> Any:
        """A context manager yielding a connection to read from (read-only for a shared store)."""
        return self._session(write=False)

    def writing(self) -> Any:
        """A context manager yielding a connection to write through, holding the writer lock meanwhile."""
        return self._session(write=True)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The open DuckDB connection (a store from :meth:`open`, or inside :meth:`reading`/:meth:`writing`)."""
        if self._con is None:
            if self._shared:
                raise StoreError(f"internal: no open session on {self.path} (use reading() or writing())")
            raise StoreError(f"database {self.path} is closed")
        return self._con

    @property
    def read_only(self) -> bool:
        """Whether this store was opened without the writer lock."""
        return self._lock is None

    def close(self) -> None:
        """Close the connection and release the writer lock; safe to call twice (a shared store holds nothing)."""
        if self._shared:
            return
        con, self._con = self._con, None
        try:
            if con is not None:
                con.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @_reads
    def schema_version(self) -> int:
        """The highest migration version applied to this database."""
        return schema_version(self.connection)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run the enclosed writes atomically: all of them commit, or none (also on kill -9)."""
        with self._session(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- repositories and watermarks -------------------------------------------------------------

    @_writes
    def upsert_repo(self, repo: RepoRecord) -> None:
        """Insert or refresh a repository row (keeps its first ``renamed_from`` once recorded)."""
        now = _now()
        self.connection.execute(
            """INSERT INTO repos VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET github_id = excluded.github_id,
                 clone_url = excluded.clone_url, default_branch = excluded.default_branch,
                 renamed_from = coalesce(excluded.renamed_from, repos.renamed_from),
                 mirror_path = excluded.mirror_path, updated_at = excluded.updated_at""",
            [
                repo.name,
                repo.github_id,
                repo.clone_url,
                repo.default_branch,
                repo.renamed_from,
                repo.mirror_path,
                now,
                now,
            ],
        )

    @_reads
    def watermark(self, repo: str, stream: str) -> datetime | None:
        """The watermark of ``stream`` (``pulls``, ``issues``, ``comments``) for ``repo``, if any."""
        rows = self.connection.execute(
            "SELECT value FROM watermarks WHERE repo = ? AND stream = ?", [repo, stream]
        ).fetchall()
        return rows[0][0] if rows else None

    @_reads
    def watermarks(self) -> dict[str, dict[str, datetime]]:
        """Every watermark as ``{repo: {stream: value}}`` (what a snapshot records as its source)."""
        out: dict[str, dict[str, datetime]] = {}
        for repo, stream, value in self.connection.execute(
            "SELECT repo, stream, value FROM watermarks ORDER BY repo, stream"
        ).fetchall():
            out.setdefault(repo, {})[stream] = value
        return out

    @_writes
    def advance_watermark(self, repo: str, stream: str, value: datetime) -> None:
        """Move a watermark forward to ``value`` (never backwards); call inside the batch's transaction."""
        self.connection.execute(
            """INSERT INTO watermarks VALUES (?, ?, ?, ?)
               ON CONFLICT (repo, stream) DO UPDATE SET value = greatest(watermarks.value, excluded.value),
                 updated_at = excluded.updated_at""",
            [repo, stream, value, _now()],
        )

    # -- issues and comments ---------------------------------------------------------------------

    @_writes
    def upsert_issues(self, issues: Sequence[IssueRecord]) -> int:
        """Insert or update issues by (repo, number); returns how many rows were written."""
        self._upsert("issues", [_row(issue) for issue in issues], ("repo", "number"))
        return len(issues)

    @_writes
    def upsert_comments(self, comments: Sequence[CommentRecord]) -> int:
        """Insert or update issue comments by (repo, id); returns how many rows were written."""
        self._upsert("issue_comments", [_row(comment) for comment in comments], ("repo", "id"))
        return len(comments)

    @_reads
    def issue_numbers(self, repo: str, numbers: Iterable[int]) -> set[int]:
        """Which of ``numbers`` are stored issues of ``repo``."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        rows = self.connection.execute(
            "SELECT number FROM issues WHERE repo = ? AND list_contains(?, number)", [repo, wanted]
        ).fetchall()
        return {int(r[0]) for r in rows}

    @_reads
    def issues_missing_comments(self, repo: str, numbers: Iterable[int]) -> list[int]:
        """Stored issues among ``numbers`` that have fewer stored comments than GitHub counts."""
        wanted = sorted(set(numbers))
        if not wanted:
            return []
        rows = self.connection.execute(
            """SELECT i.number FROM issues i
               LEFT JOIN (SELECT issue_number, count(*) AS n FROM issue_comments WHERE repo = ?
                          GROUP BY issue_number) c ON c.issue_number = i.number
               WHERE i.repo = ? AND list_contains(?, i.number) AND coalesce(c.n, 0) < i.comments_count
               ORDER BY i.number""",
            [repo, repo, wanted],
        ).fetchall()
        return [int(r[0]) for r in rows]

    @_reads
    def comment_counts(self, repo: str, numbers: Iterable[int]) -> dict[int, int]:
        """How many comments are stored per issue number (numbers without any are left out)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return {}
        rows = self.connection.execute(
            "SELECT issue_number, count(*) FROM issue_comments "
            "WHERE repo = ? AND list_contains(?, issue_number) GROUP BY issue_number",
            [repo, wanted],
        ).fetchall()
        return {int(n): int(c) for n, c in rows}

    # -- pull requests, files, blobs -------------------------------------------------------------

    @_reads
    def pr_versions(self, repo: str) -> dict[int, datetime]:
        """``updated_at`` of every stored or skipped PR of ``repo``, to recognise unchanged ones."""
        rows = self.connection.execute(
            "SELECT number, updated_at FROM pull_requests WHERE repo = ? "
            "UNION ALL SELECT number, updated_at FROM skipped_prs WHERE repo = ?",
            [repo, repo],
        ).fetchall()
        return {int(number): updated for number, updated in rows}

    @_reads
    def pull_request_numbers(self, repo: str) -> set[int]:
        """Numbers of every kept or skipped pull request of ``repo``."""
        rows = self.connection.execute(
            "SELECT number FROM pull_requests WHERE repo = ? UNION SELECT number FROM skipped_prs WHERE repo = ?",
            [repo, repo],
        ).fetchall()
        return {int(r[0]) for r in rows}

    @_writes
    def write_pull_requests(self, prs: Sequence[PullRequestRecord], run_id: str) -> tuple[int, int]:
        """Replace the given PRs with their files and links; returns (new, updated) counts.

        Call inside :meth:`transaction` so a PR is never half-written.
        """
        if not prs:
            return 0, 0
        keys = [(pr.repo, pr.number) for pr in prs]
        existing = self._existing_prs(keys)
        self._delete_children(keys, ("pr_files", "pr_issue_links"), "pr_number")
        self._delete_children(keys, ("skipped_prs",), "number")
        now = _now()
        self._upsert(
            "pull_requests",
            [
                [pr.repo, pr.number, pr.github_id, pr.title, pr.body, pr.author_login, pr.author_type,
                 pr.author_is_bot, list(pr.labels), pr.created_at, pr.updated_at, pr.closed_at, pr.merged_at,
                 pr.base_ref, pr.head_ref, pr.base_sha, pr.head_sha, pr.merge_commit_sha, pr.merge_base_sha,
                 pr.first_commit_at, list(pr.commit_messages), pr.has_linked_issue, len(pr.files),
                 pr.code_patch, pr.test_patch, run_id, now, pr.links_missing_source]
                for pr in prs
            ],
            ("repo", "number"),
        )  # fmt: skip
        self._upsert(
            "pr_files", [[pr.repo, pr.number, *_row(f)] for pr in prs for f in pr.files],
            ("repo", "pr_number", "path"),
        )  # fmt: skip
        self._upsert(
            "pr_issue_links",
            [
                [pr.repo, pr.number, link.issue_repo, link.issue_number, link.kind, list(link.sources)]
                for pr in prs
                for link in pr.links
            ],
            ("repo", "pr_number", "issue_repo", "issue_number"),
        )
        updated = sum(1 for key in keys if key in existing)
        return len(prs) - updated, updated

    @_reads
    def unlinked_pulls(self, repo: str, source: str) -> list[UnlinkedPull]:
        """Kept PRs of ``repo`` written without link source ``source``, oldest number first."""
        rows = self.connection.execute(
            "SELECT repo, number, title, body, commit_messages FROM pull_requests "
            "WHERE repo = ? AND links_missing_source = ? ORDER BY number",
            [repo, source],
        ).fetchall()
        return [UnlinkedPull(r, int(n), t, b, tuple(m)) for r, n, t, b, m in rows]

    @_writes
    def relink_pull_requests(self, repo: str, links: Mapping[int, Sequence[LinkRecord]]) -> None:
        """Replace the links of already stored PRs of ``repo`` and clear their missing-source mark.

        Only the links change (and ``has_linked_issue``, which follows them); call inside :meth:`transaction`.
        """
        if not links:
            return
        numbers = sorted(links)
        self._delete_children([(repo, n) for n in numbers], ("pr_issue_links",), "pr_number")
        self._upsert(
            "pr_issue_links",
            [
                [repo, number, link.issue_repo, link.issue_number, link.kind, list(link.sources)]
                for number in numbers
                for link in links[number]
            ],
            ("repo", "pr_number", "issue_repo", "issue_number"),
        )
        linked = [n for n in numbers if has_linked_issue(repo, links[n])]
        self.connection.execute(
            "UPDATE pull_requests SET links_missing_source = NULL, "
            "has_linked_issue = list_contains(?::INTEGER[], number) "
            "WHERE repo = ? AND list_contains(?::INTEGER[], number)",
            [linked, repo, numbers],
        )

    @_writes
    def record_skips(self, skips: Sequence[SkippedPR], run_id: str) -> None:
        """Record skipped PRs with their reasons, dropping any earlier kept copy of them."""
        if not skips:
            return
        keys = [(s.repo, s.number) for s in skips]
        self._delete_children(keys, ("pull_requests",), "number")
        self._delete_children(keys, ("pr_files", "pr_issue_links"), "pr_number")
        self._upsert(
            "skipped_prs",
            [[s.repo, s.number, s.reason, s.detail, s.updated_at, run_id] for s in skips],
            ("repo", "number"),
        )

    @_reads
    def missing_blobs(self, shas: Iterable[str]) -> set[str]:
        """Which of ``shas`` have no stored content row yet."""
        wanted = sorted(set(shas))
        if not wanted:
            return set()
        rows = self.connection.execute("SELECT sha FROM blobs WHERE list_contains(?, sha)", [wanted]).fetchall()
        return set(wanted) - {r[0] for r in rows}

    @_writes
    def insert_blobs(self, blobs: Sequence[BlobRecord]) -> int:
        """Store blob contents once per SHA (an existing SHA is left as is); returns rows offered."""
        self._upsert("blobs", [_row(blob) for blob in blobs], ("sha",), update=False)
        return len(blobs)

    # -- runs and status -------------------------------------------------------------------------

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Hold ``<db>.ingest.lock`` for a whole ingest run: one ingest per database at a time.

        Waits up to the store's lock timeout for another ingest, then raises :class:`StoreError`
        naming its PID. While it is held, a run still marked ``running`` died with its process.
        """
        lock = WriterLock(ingest_lock_path(self.path))
        _make_parent(self.path)
        try:
            lock.acquire(self._lock_timeout_s)
        except WriterLockBusy as exc:
            raise StoreError(f"another ingest is running: {exc} ({self.path})") from None
        try:
            yield
        finally:
            lock.release()

    @_writes
    def start_run(self, repos: Sequence[str]) -> str:
        """Record a new ingest run as ``running`` and return its id; call holding :meth:`ingest_lock`.

        Runs still marked ``running`` are marked ``aborted`` first: under the ingest lock no other
        ingest is alive, so they died with their process.
        """
        self.connection.execute(
            "UPDATE ingest_runs SET status = 'aborted', message = 'process ended without finishing' "
            "WHERE status = 'running'"
        )
        run_id = uuid.uuid4().hex
        self.connection.execute(
            "INSERT INTO ingest_runs (id, started_at, status, repos) VALUES (?, ?, 'running', ?)",
            [run_id, _now(), list(repos)],
        )
        return run_id

    @_writes
    def finish_run(self, run_id: str, totals: RunTotals) -> None:
        """Write the final counters and status of run ``run_id``."""
        self.connection.execute(
            """UPDATE ingest_runs SET finished_at = ?, status = ?, prs_new = ?, prs_updated = ?,
                 prs_skipped = ?, skipped_by_reason_json = ?, issues_upserted = ?, api_requests = ?,
                 rate_limit_waits = ?, rate_limit_wait_s = ?, duration_s = ?, message = ?
               WHERE id = ?""",
            [
                _now(),
                totals.status,
                totals.prs_new,
                totals.prs_updated,
                totals.prs_skipped,
                json.dumps(totals.skipped_by_reason, sort_keys=True),
                totals.issues_upserted,
                totals.api_requests,
                totals.rate_limit_waits,
                totals.rate_limit_wait_s,
                totals.duration_s,
                totals.message,
                run_id,
            ],
        )

    @_reads
    def repo_status(self) -> list[RepoStatus]:
        """Per repository: kept and skipped PRs, issues, PR watermark, the last run touching it, PRs to re-link."""
        rows = self.connection.execute(
            """SELECT r.name,
                 (SELECT count(*) FROM pull_requests p WHERE p.repo = r.name),
                 (SELECT count(*) FROM skipped_prs s WHERE s.repo = r.name),
                 (SELECT count(*) FROM issues i WHERE i.repo = r.name),
                 (SELECT value FROM watermarks w WHERE w.repo = r.name AND w.stream = 'pulls'),
                 (SELECT max_by(coalesce(finished_at, started_at), started_at) FROM ingest_runs
                    WHERE list_contains(repos, r.name)),
                 (SELECT max_by(status, started_at) FROM ingest_runs WHERE list_contains(repos, r.name)),
                 (SELECT count(*) FROM pull_requests p WHERE p.repo = r.name AND p.links_missing_source IS NOT NULL)
               FROM repos r ORDER BY r.name"""
        ).fetchall()
        # A run still "running" while nobody holds the ingest lock died with its process (kill -9).
        dead = not writer_active(ingest_lock_path(self.path))
        statuses = [RepoStatus(*row) for row in rows]
        return [
            dataclasses.replace(s, last_run_status="interrupted") if dead and s.last_run_status == "running" else s
            for s in statuses
        ]

    # -- snapshots and evaluations ---------------------------------------------------------------

    @_writes
    def record_snapshot(self, record: SnapshotRecord) -> bool:
        """Insert a snapshot's row unless one with its id is there; True when inserted."""
        return self._insert_row("snapshots", record, conflict="(id) DO NOTHING") > 0

    @_writes
    def record_evaluation(self, record: EvaluationRecord) -> None:
        """Insert one evaluation's row."""
        self._insert_row("evaluations", record)

    def latest_evaluation(
        self,
        snapshot_id: str,
        samples: int,
        protocol: str,
        *,
        model_ref: str | None = None,
        version: tuple[str, str] | None = None,
    ) -> dict[str, object] | None:
        """The newest ``evaluations`` row of a model (by ``model_ref`` or ``(name, version)``) under ``protocol``.

        Rows of other protocols and rows recorded before protocols were (no fingerprint) never match;
        a shared store whose database does not exist yet has none.
        """
        if (model_ref is None) == (version is None):
            raise ValueError("give exactly one of model_ref and version")
        if self._con is None and self._shared and not self.path.exists():
            return None
        where, args = (
            ("model_ref = ?", [model_ref])
            if model_ref is not None
            else ("model_name = ? AND model_version = ?", list(version or ()))
        )
        with self._session(write=False) as con:
            cursor = con.execute(
                f"SELECT * FROM evaluations WHERE {where} AND snapshot_id = ? AND samples = ? AND protocol = ? "
                "ORDER BY created_at DESC LIMIT 1",
                [*args, snapshot_id, samples, protocol],
            )
            rows = cursor.fetchall()
            return dict(zip([d[0] for d in cursor.description], rows[0], strict=True)) if rows else None

    # -- internals -------------------------------------------------------------------------------

    def _insert_row(self, table: str, record: object, conflict: str | None = None) -> int:
        """Insert ``record`` (a dataclass whose fields are ``table``'s columns) by column name; rows inserted."""
        names = _FIELDS.get(type(record)) or tuple(f.name for f in fields(record))  # type: ignore[arg-type]
        on_conflict = f" ON CONFLICT {conflict}" if conflict else ""
        rows = self.connection.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}){on_conflict} RETURNING 1",
            _row(record),
        ).fetchall()
        return len(rows)

    def _columns(self, table: str) -> list[tuple[str, pa.DataType]]:
        cached = self._column_cache.get(table)
        if cached is None:
            rows = self.connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            cached = [(name, _ARROW_TYPES[kind]) for name, kind in rows]
            self._column_cache[table] = cached
        return cached

    def _upsert(self, table: str, rows: Sequence[Sequence[object]], key: tuple[str, ...], update: bool = True) -> None:
        """Bulk insert ``rows`` (full rows in table order) through Arrow; on a key conflict update or keep."""
        if not rows:
            return
        columns = self._columns(table)
        names = [name for name, _ in columns]
        positions = [names.index(k) for k in key]
        unique = list({tuple(row[i] for i in positions): row for row in rows}.values())  # last one wins
        batch = pa.Table.from_arrays(
            [pa.array([row[j] for row in unique], type=kind) for j, (_, kind) in enumerate(columns)],
            names=names,
        )
        if update:
            sets = ", ".join(f"{n} = excluded.{n}" for n in names if n not in key)
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        con = self.connection
        con.register("_swerl_batch", batch)
        try:
            con.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM _swerl_batch "
                f"ON CONFLICT ({', '.join(key)}) {action}"
            )
        finally:
            con.unregister("_swerl_batch")

    def _delete_children(self, keys: Sequence[tuple[str, int]], tables: tuple[str, ...], column: str) -> None:
        by_repo: dict[str, list[int]] = {}
        for repo, number in keys:
            by_repo.setdefault(repo, []).append(number)
        for table in tables:
            for repo, numbers in by_repo.items():
                self.connection.execute(
                    f"DELETE FROM {table} WHERE repo = ? AND list_contains(?, {column})", [repo, numbers]
                )

    def _existing_prs(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        by_repo: dict[str, list[int]] = {}
        for repo, number in keys:
            by_repo.setdefault(repo, []).append(number)
        found: set[tuple[str, int]] = set()
        for repo, numbers in by_repo.items():
            rows = self.connection.execute(
                "SELECT number FROM pull_requests WHERE repo = ? AND list_contains(?, number)",
                [repo, numbers],
            ).fetchall()
            found.update((repo, int(r[0])) for r in rows)
        return found

    def _check_version(self, migrations: tuple[Migration, ...], read_only: bool) -> None:
        current = schema_version(self.connection)
        newest = max((m.version for m in migrations), default=0)
        if current > newest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this swerl ({newest}); upgrade swerl"
            )
        if read_only and current < newest:
            raise StoreError(
                f"database {self.path} has schema version {current} (this swerl needs {newest}); "
                "open it once for writing (an ingest does) to upgrade it"
            )


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()),
}


def lock_path(db_path: Path) -> Path:
    """The writer lock file next to the database file."""
    return db_path.with_name(db_path.name + ".lock")


def ingest_lock_path(db_path: Path) -> Path:
    """The lock file an ingest run holds for its whole duration (one ingest per database at a time)."""
    return db_path.with_name(db_path.name + ".ingest.lock")


def _open_checked(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """:func:`_connect` after checking that an existing file is an intact database (a damaged one is never written)."""
    if path.exists():
        check_intact(path, every_block=not read_only)
    return _connect(path, read_only, timeout_s)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from None


def _take_writer_lock(path: Path, timeout_s: float) -> WriterLock:
    lock = WriterLock(lock_path(path))
    _make_parent(path)
    try:
        lock.acquire(timeout_s)
    except WriterLockBusy as exc:
        raise StoreError(f"{exc} ({path})") from None
    except OSError as exc:
        raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
    return lock


def _connect(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying up to ``timeout_s`` while another process holds the file in a conflicting mode."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            left = deadline - time.monotonic()
            if not _is_lock_conflict(_first_line(exc)) or left <= 0:
                raise StoreError(_open_failure(path, exc, timeout_s)) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)


def _row(record: object) -> list[object]:
    names = _FIELDS.get(type(record))
    if names is None:
        names = _FIELDS[type(record)] = tuple(f.name for f in fields(record))  # type: ignore[arg-type]
    values = (getattr(record, name) for name in names)
    return [list(v) if isinstance(v, tuple) else v for v in values]


_FIELDS: dict[type, tuple[str, ...]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the first block


def check_intact(path: Path, every_block: bool = False) -> None:
    """Raise :class:`StoreError` when the DuckDB file at ``path`` is damaged (unreadable headers, cut short).

    Opens the file read-only, so a damaged database is diagnosed without a single write to it. A file
    with a write-ahead log next to it is not size-checked (the log may still hold its newest blocks).
    ``every_block`` also reads every column of every table, so DuckDB verifies each block's checksum
    (a writer does this before its first write; about 0.1 s for 20 MB).
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if _is_lock_conflict(_first_line(exc)):
            return  # another process has it open; the writable connection reports who
        raise StoreError(_open_failure(path, exc)) from None
    try:
        _, _, block_size, _, used_blocks, *_ = con.execute("PRAGMA database_size").fetchone() or (0, 0, 0, 0, 0)
        if every_block:
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
            for schema, table in tables:
                con.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{schema}"."{table}"').fetchall()
    except duckdb.Error as exc:
        raise StoreError(_damaged(path, _first_line(exc))) from None
    finally:
        con.close()
    wal = path.with_name(path.name + ".wal")
    # Free blocks at the end of the file may be truncated away (the file is then shorter than total_blocks),
    # but every used block lies inside the file: fewer bytes than the used blocks need means it was cut.
    expected = _HEADER_BYTES + int(used_blocks) * int(block_size)
    if not wal.exists() and int(used_blocks) > 0 and path.stat().st_size < expected:
        raise StoreError(_damaged(path, f"the file is cut short ({path.stat().st_size} of {expected} bytes)"))


def _damaged(path: Path, detail: str) -> str:
    return (
        f"database {path} is damaged ({detail}); swerl did not write to it. Move it aside and rerun "
        "`swerl ingest` to rebuild it from GitHub (mirrors are reused), or restore a backup"
    )


def _is_lock_conflict(text: str) -> bool:
    lowered = text.lower()
    return "could not set lock" in lowered or "conflicting lock" in lowered


def _open_failure(path: Path, exc: duckdb.Error, waited_s: float = 0.0) -> str:
    text = _first_line(exc)
    if _is_lock_conflict(text):
        # DuckDB names the process holding the file ("… (PID 1234)"); our lock file names a writer.
        found = re.search(r"PID (\d+)", text)
        pid = int(found.group(1)) if found else holder_pid(lock_path(path))
        waited = f" (waited {waited_s:g} s for it)" if waited_s > 0 else ""
        return f"database is in use by PID {pid if pid is not None else 'unknown'}{waited} ({path})"
    lowered = text.lower()
    if any(mark in lowered for mark in ("corrupt", "checksum", "could not read enough bytes", "not a valid duckdb")):
        return _damaged(path, text)
    return f"cannot open database {path}: {text}"
