"""Ingest's tables: repositories, watermarks, issues and comments, pull requests with files and links, blobs,
skipped PRs, ingest runs, and the ingest lock.

Every write is an upsert by natural key, so a rerun never duplicates a row; a batch's writes go inside one
:meth:`~swerl_core.store.Store.transaction`. Curate reads these tables with plain SQL (they are its input);
only ingest writes them. This module must never talk to GitHub or git.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow as pa
from duckdb import DuckDBPyConnection as Connection

from swerl_core.locks import lock_active
from swerl_core.store.lock import ingest_lock, take
from swerl_core.store.records import (
    BlobRecord,
    CommentRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RepoRecord,
    RepoStatus,
    RunTotals,
    SkippedPR,
    UnlinkedPull,
    has_linked_issue,
)
from swerl_core.store.tables import Sessions, StageTables, reads, row_values, writes


class IngestTables(StageTables):
    """What ingest writes (and ``swerl status`` reads): ``store.ingest``."""

    def __init__(self, store: Sessions) -> None:
        super().__init__(store)
        self._column_cache: dict[str, list[tuple[str, pa.DataType]]] = {}

    # -- repositories and watermarks -------------------------------------------------------------

    @writes
    def upsert_repo(self, con: Connection, repo: RepoRecord) -> None:
        """Insert or refresh a repository row (keeps its first ``renamed_from`` once recorded)."""
        now = _now()
        con.execute(
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

    @reads
    def watermark(self, con: Connection, repo: str, stream: str) -> datetime | None:
        """The watermark of ``stream`` (``pulls``, ``issues``, ``comments``) for ``repo``, if any."""
        rows = con.execute("SELECT value FROM watermarks WHERE repo = ? AND stream = ?", [repo, stream]).fetchall()
        return rows[0][0] if rows else None

    @reads
    def watermarks(self, con: Connection) -> dict[str, dict[str, datetime]]:
        """Every watermark as ``{repo: {stream: value}}`` (what a snapshot records as its source)."""
        out: dict[str, dict[str, datetime]] = {}
        for repo, stream, value in con.execute(
            "SELECT repo, stream, value FROM watermarks ORDER BY repo, stream"
        ).fetchall():
            out.setdefault(repo, {})[stream] = value
        return out

    @writes
    def advance_watermark(self, con: Connection, repo: str, stream: str, value: datetime) -> None:
        """Move a watermark forward to ``value`` (never backwards); call inside the batch's transaction."""
        con.execute(
            """INSERT INTO watermarks VALUES (?, ?, ?, ?)
               ON CONFLICT (repo, stream) DO UPDATE SET value = greatest(watermarks.value, excluded.value),
                 updated_at = excluded.updated_at""",
            [repo, stream, value, _now()],
        )

    # -- issues and comments ---------------------------------------------------------------------

    @writes
    def upsert_issues(self, con: Connection, issues: Sequence[IssueRecord]) -> int:
        """Insert or update issues by (repo, number); returns how many rows were written."""
        self._upsert(con, "issues", [row_values(issue) for issue in issues], ("repo", "number"))
        return len(issues)

    @writes
    def upsert_comments(self, con: Connection, comments: Sequence[CommentRecord]) -> int:
        """Insert or update issue comments by (repo, id); returns how many rows were written."""
        self._upsert(con, "issue_comments", [row_values(comment) for comment in comments], ("repo", "id"))
        return len(comments)

    @reads
    def issue_numbers(self, con: Connection, repo: str, numbers: Iterable[int]) -> set[int]:
        """Which of ``numbers`` are stored issues of ``repo``."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        rows = con.execute(
            "SELECT number FROM issues WHERE repo = ? AND list_contains(?, number)", [repo, wanted]
        ).fetchall()
        return {int(r[0]) for r in rows}

    @reads
    def issues_missing_comments(self, con: Connection, repo: str, numbers: Iterable[int]) -> list[int]:
        """Stored issues among ``numbers`` that have fewer stored comments than GitHub counts."""
        wanted = sorted(set(numbers))
        if not wanted:
            return []
        rows = con.execute(
            """SELECT i.number FROM issues i
               LEFT JOIN (SELECT issue_number, count(*) AS n FROM issue_comments WHERE repo = ?
                          GROUP BY issue_number) c ON c.issue_number = i.number
               WHERE i.repo = ? AND list_contains(?, i.number) AND coalesce(c.n, 0) < i.comments_count
               ORDER BY i.number""",
            [repo, repo, wanted],
        ).fetchall()
        return [int(r[0]) for r in rows]

    @reads
    def comment_counts(self, con: Connection, repo: str, numbers: Iterable[int]) -> dict[int, int]:
        """How many comments are stored per issue number (numbers without any are left out)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return {}
        rows = con.execute(
            "SELECT issue_number, count(*) FROM issue_comments "
            "WHERE repo = ? AND list_contains(?, issue_number) GROUP BY issue_number",
            [repo, wanted],
        ).fetchall()
        return {int(n): int(c) for n, c in rows}

    # -- pull requests, files, blobs -------------------------------------------------------------

    @reads
    def pr_versions(self, con: Connection, repo: str) -> dict[int, datetime]:
        """``updated_at`` of every stored or skipped PR of ``repo``, to recognise unchanged ones."""
        rows = con.execute(
            "SELECT number, updated_at FROM pull_requests WHERE repo = ? "
            "UNION ALL SELECT number, updated_at FROM skipped_prs WHERE repo = ?",
            [repo, repo],
        ).fetchall()
        return {int(number): updated for number, updated in rows}

    @reads
    def pull_request_numbers(self, con: Connection, repo: str) -> set[int]:
        """Numbers of every kept or skipped pull request of ``repo``."""
        rows = con.execute(
            "SELECT number FROM pull_requests WHERE repo = ? UNION SELECT number FROM skipped_prs WHERE repo = ?",
            [repo, repo],
        ).fetchall()
        return {int(r[0]) for r in rows}

    @writes
    def write_pull_requests(self, con: Connection, prs: Sequence[PullRequestRecord], run_id: str) -> tuple[int, int]:
        """Replace the given PRs with their files and links; returns (new, updated) counts.

        Call inside :meth:`~swerl_core.store.Store.transaction` so a PR is never half-written.
        """
        if not prs:
            return 0, 0
        keys = [(pr.repo, pr.number) for pr in prs]
        existing = _existing_prs(con, keys)
        _delete_children(con, keys, ("pr_files", "pr_issue_links"), "pr_number")
        _delete_children(con, keys, ("skipped_prs",), "number")
        now = _now()
        self._upsert(
            con,
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
            con, "pr_files", [[pr.repo, pr.number, *row_values(f)] for pr in prs for f in pr.files],
            ("repo", "pr_number", "path"),
        )  # fmt: skip
        self._upsert(
            con,
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

    @reads
    def unlinked_pulls(self, con: Connection, repo: str, source: str) -> list[UnlinkedPull]:
        """Kept PRs of ``repo`` written without link source ``source``, oldest number first."""
        rows = con.execute(
            "SELECT repo, number, title, body, commit_messages FROM pull_requests "
            "WHERE repo = ? AND links_missing_source = ? ORDER BY number",
            [repo, source],
        ).fetchall()
        return [UnlinkedPull(r, int(n), t, b, tuple(m)) for r, n, t, b, m in rows]

    @writes
    def relink_pull_requests(self, con: Connection, repo: str, links: Mapping[int, Sequence[LinkRecord]]) -> None:
        """Replace the links of already stored PRs of ``repo`` and clear their missing-source mark.

        Only the links change (and ``has_linked_issue``, which follows them); call inside a transaction.
        """
        if not links:
            return
        numbers = sorted(links)
        _delete_children(con, [(repo, n) for n in numbers], ("pr_issue_links",), "pr_number")
        self._upsert(
            con,
            "pr_issue_links",
            [
                [repo, number, link.issue_repo, link.issue_number, link.kind, list(link.sources)]
                for number in numbers
                for link in links[number]
            ],
            ("repo", "pr_number", "issue_repo", "issue_number"),
        )
        linked = [n for n in numbers if has_linked_issue(repo, links[n])]
        con.execute(
            "UPDATE pull_requests SET links_missing_source = NULL, "
            "has_linked_issue = list_contains(?::INTEGER[], number) "
            "WHERE repo = ? AND list_contains(?::INTEGER[], number)",
            [linked, repo, numbers],
        )

    @writes
    def record_skips(self, con: Connection, skips: Sequence[SkippedPR], run_id: str) -> None:
        """Record skipped PRs with their reasons, dropping any earlier kept copy of them."""
        if not skips:
            return
        keys = [(s.repo, s.number) for s in skips]
        _delete_children(con, keys, ("pull_requests",), "number")
        _delete_children(con, keys, ("pr_files", "pr_issue_links"), "pr_number")
        self._upsert(
            con,
            "skipped_prs",
            [[s.repo, s.number, s.reason, s.detail, s.updated_at, run_id] for s in skips],
            ("repo", "number"),
        )

    @reads
    def missing_blobs(self, con: Connection, shas: Iterable[str]) -> set[str]:
        """Which of ``shas`` have no stored content row yet."""
        wanted = sorted(set(shas))
        if not wanted:
            return set()
        rows = con.execute("SELECT sha FROM blobs WHERE list_contains(?, sha)", [wanted]).fetchall()
        return set(wanted) - {r[0] for r in rows}

    @writes
    def insert_blobs(self, con: Connection, blobs: Sequence[BlobRecord]) -> int:
        """Store blob contents once per SHA (an existing SHA is left as is); returns rows offered."""
        self._upsert(con, "blobs", [row_values(blob) for blob in blobs], ("sha",), update=False)
        return len(blobs)

    # -- runs and status -------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the ingest lock (``locks/<db>.ingest.lock``) for a whole run: one ingest per database at a time.

        Waits up to the store's lock timeout for another ingest, then raises :class:`~swerl_core.store.StoreError`
        naming its PID. While it is held, a run still marked ``running`` died with its process.
        """
        lock = ingest_lock(self.store.path)
        take(lock, self.store.path, self.store.lock_timeout_s, busy="another ingest is running: ")
        try:
            yield
        finally:
            lock.release()

    @writes
    def start_run(self, con: Connection, repos: Sequence[str]) -> str:
        """Record a new ingest run as ``running`` and return its id; call holding :meth:`lock`.

        Runs still marked ``running`` are marked ``aborted`` first: under the ingest lock no other
        ingest is alive, so they died with their process.
        """
        con.execute(
            "UPDATE ingest_runs SET status = 'aborted', message = 'process ended without finishing' "
            "WHERE status = 'running'"
        )
        run_id = uuid.uuid4().hex
        con.execute(
            "INSERT INTO ingest_runs (id, started_at, status, repos) VALUES (?, ?, 'running', ?)",
            [run_id, _now(), list(repos)],
        )
        return run_id

    @writes
    def finish_run(self, con: Connection, run_id: str, totals: RunTotals) -> None:
        """Write the final counters and status of run ``run_id``."""
        con.execute(
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

    @reads
    def repo_status(self, con: Connection) -> list[RepoStatus]:
        """Per repository (once, under its newest name when GitHub renamed it): kept and skipped PRs, issues, PR
        watermark, the last run touching it, PRs to re-link."""
        rows = con.execute(
            """SELECT r.name,
                 (SELECT count(*) FROM pull_requests p WHERE p.repo = r.name),
                 (SELECT count(*) FROM skipped_prs s WHERE s.repo = r.name),
                 (SELECT count(*) FROM issues i WHERE i.repo = r.name),
                 (SELECT value FROM watermarks w WHERE w.repo = r.name AND w.stream = 'pulls'),
                 (SELECT max_by(coalesce(finished_at, started_at), started_at) FROM ingest_runs
                    WHERE list_contains(repos, r.name)),
                 (SELECT max_by(status, started_at) FROM ingest_runs WHERE list_contains(repos, r.name)),
                 (SELECT count(*) FROM pull_requests p WHERE p.repo = r.name AND p.links_missing_source IS NOT NULL)
               FROM repos r
               -- a repository ingested before GitHub renamed it is listed once, under its new name
               WHERE NOT EXISTS (SELECT 1 FROM repos n WHERE n.renamed_from = r.name AND n.name <> r.name
                                 AND (n.github_id = r.github_id OR n.github_id IS NULL OR r.github_id IS NULL))
               ORDER BY r.name"""
        ).fetchall()
        # A run still "running" while nobody holds the ingest lock died with its process (kill -9).
        dead = not lock_active(ingest_lock(self.store.path).path)
        statuses = [RepoStatus(*row) for row in rows]
        return [
            dataclasses.replace(s, last_run_status="interrupted") if dead and s.last_run_status == "running" else s
            for s in statuses
        ]

    # -- internals -------------------------------------------------------------------------------

    def _columns(self, con: Connection, table: str) -> list[tuple[str, pa.DataType]]:
        cached = self._column_cache.get(table)
        if cached is None:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            cached = [(name, _ARROW_TYPES[kind]) for name, kind in rows]
            self._column_cache[table] = cached
        return cached

    def _upsert(
        self, con: Connection, table: str, rows: Sequence[Sequence[object]], key: tuple[str, ...], update: bool = True
    ) -> None:
        """Bulk insert ``rows`` (full rows in table order) through Arrow; on a key conflict update or keep."""
        if not rows:
            return
        columns = self._columns(con, table)
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
        con.register("_swerl_batch", batch)
        try:
            con.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM _swerl_batch "
                f"ON CONFLICT ({', '.join(key)}) {action}"
            )
        finally:
            con.unregister("_swerl_batch")


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()),
}


def _by_repo(keys: Sequence[tuple[str, int]]) -> dict[str, list[int]]:
    by_repo: dict[str, list[int]] = {}
    for repo, number in keys:
        by_repo.setdefault(repo, []).append(number)
    return by_repo


def _delete_children(con: Connection, keys: Sequence[tuple[str, int]], tables: tuple[str, ...], column: str) -> None:
    by_repo = _by_repo(keys)
    for table in tables:
        for repo, numbers in by_repo.items():
            con.execute(f"DELETE FROM {table} WHERE repo = ? AND list_contains(?, {column})", [repo, numbers])


def _existing_prs(con: Connection, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for repo, numbers in _by_repo(keys).items():
        rows = con.execute(
            "SELECT number FROM pull_requests WHERE repo = ? AND list_contains(?, number)", [repo, numbers]
        ).fetchall()
        found.update((repo, int(r[0])) for r in rows)
    return found


def _now() -> datetime:
    return datetime.now(UTC)
