"""The DuckDB store: migrations and in-place upgrades, upserts, transactions, watermarks, writer lock."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from swerl_core.store import (
    MIGRATIONS,
    BlobRecord,
    FileRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RunTotals,
    SkippedPR,
    Store,
    StoreError,
    lock_path,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REPO = "acme/textkit"


def pr(number: int, updated: datetime = T0, title: str = "Fix it", files: int = 1) -> PullRequestRecord:
    return PullRequestRecord(
        repo=REPO,
        number=number,
        github_id=number,
        title=title,
        body="Fixes #1",
        author_login="ann",
        author_type="User",
        author_is_bot=False,
        labels=("bug",),
        created_at=T0,
        updated_at=updated,
        closed_at=updated,
        merged_at=updated,
        base_ref="main",
        head_ref="fix",
        base_sha="a" * 40,
        head_sha="b" * 40,
        merge_commit_sha="c" * 40,
        merge_base_sha="d" * 40,
        first_commit_at=T0,
        commit_messages=("fix it",),
        code_patch="diff --git a/x b/x\n",
        test_patch="",
        files=tuple(
            FileRecord(f"src/f{i}.py", None, "M", False, False, "1" * 40, "2" * 40, 3, 4, 1, 1) for i in range(files)
        ),
        links=(LinkRecord(REPO, 1, "issue", ("body",)),),
    )


def issue(number: int, updated: datetime = T0, comments: int = 0) -> IssueRecord:
    return IssueRecord(
        REPO,
        number,
        number,
        "Bug",
        "",
        "bob",
        "User",
        "closed",
        "completed",
        ("bug",),
        comments,
        T0,
        updated,
        updated,
    )


def table_count(store: Store, table: str) -> int:
    row = store.connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_new_database_is_created_at_the_latest_schema_version(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        assert store.schema_version() == MIGRATIONS[-1].version
        tables = {r[0] for r in store.connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {
        "schema_migrations",
        "pull_requests",
        "pr_files",
        "blobs",
        "issues",
        "issue_comments",
        "pr_issue_links",
        "skipped_prs",
        "watermarks",
        "ingest_runs",
        "repos",
        "snapshots",
    } <= tables


def test_old_database_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    with Store.open(path, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version() == 1
        with old.transaction():
            old.ingest.write_pull_requests([pr(7)], run_id="r1")
            old.ingest.upsert_issues([issue(1)])
    with Store.open(path) as new:
        assert new.schema_version() == MIGRATIONS[-1].version
        assert table_count(new, "pull_requests") == 1
        assert table_count(new, "issues") == 1
        assert table_count(new, "snapshots") == 0
        versions = [r[0] for r in new.connection.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        assert versions == [m.version for m in MIGRATIONS]


def test_upgrade_marks_pull_requests_an_anonymous_run_linked_without_graphql(tmp_path: Path) -> None:
    """Migration 5 adds the missing-link-source mark and sets it on the PRs an earlier anonymous run wrote."""
    path = tmp_path / "swerl.duckdb"
    before = [m for m in MIGRATIONS if m.version < 5]
    with Store.open(path, migrations=tuple(before)) as old:
        assert old.schema_version() == 4
        anonymous, with_token = old.ingest.start_run([REPO]), old.ingest.start_run([REPO])
        old.ingest.finish_run(anonymous, RunTotals(status="ok", message="no token: GraphQL needs one; keywords only"))
        old.ingest.finish_run(with_token, RunTotals(status="ok"))
        with old.transaction():
            old.ingest.write_pull_requests([pr(7), pr(8)], run_id=anonymous)
            old.ingest.write_pull_requests([pr(9)], run_id=with_token)
    with Store.open(path) as new:
        assert new.schema_version() == MIGRATIONS[-1].version >= 5
        rows = new.connection.execute("SELECT number, links_missing_source FROM pull_requests ORDER BY 1").fetchall()
        assert rows == [(7, "graphql"), (8, "graphql"), (9, None)]
        assert [u.number for u in new.ingest.unlinked_pulls(REPO, "graphql")] == [7, 8]
        assert table_count(new, "pr_issue_links") == 3


def test_relinking_replaces_links_and_clears_the_mark(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        with store.transaction():
            store.ingest.write_pull_requests([dataclasses.replace(pr(7), links_missing_source="graphql"), pr(8)], "r1")
        (unlinked,) = store.ingest.unlinked_pulls(REPO, "graphql")
        assert (unlinked.number, unlinked.body, unlinked.commit_messages) == (7, "Fixes #1", ("fix it",))
        with store.transaction():
            store.ingest.relink_pull_requests(REPO, {7: [LinkRecord("other/lib", 3, "cross_repo", ("graphql",))]})
        rows = store.connection.execute(
            "SELECT number, has_linked_issue, links_missing_source FROM pull_requests ORDER BY 1"
        ).fetchall()
        assert rows == [(7, False, None), (8, True, None)]
        links = store.connection.execute(
            "SELECT pr_number, issue_repo, sources FROM pr_issue_links ORDER BY 1"
        ).fetchall()
        assert links == [(7, "other/lib", ["graphql"]), (8, REPO, ["body"])]
        assert store.ingest.unlinked_pulls(REPO, "graphql") == []


def test_database_newer_than_this_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    Store.open(path).close()
    with pytest.raises(StoreError, match="newer than this swerl"):
        Store.open(path, migrations=MIGRATIONS[:1])


def test_read_only_open_of_a_missing_database_says_to_ingest_first(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nothing has been ingested yet"):
        Store.open(tmp_path / "none.duckdb", read_only=True)


def test_read_only_store_answers_queries_after_opening(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    with Store.open(path) as store:
        store.ingest.advance_watermark("acme/textkit", "pulls", datetime(2025, 1, 1, tzinfo=UTC))
    with Store.open(path, read_only=True) as store:
        assert store.ingest.watermark("acme/textkit", "pulls") == datetime(2025, 1, 1, tzinfo=UTC)
        assert store.connection.sql("SELECT count(*) FROM pull_requests").fetchall() == [(0,)]


def test_rewriting_a_pull_request_replaces_it_without_duplicates(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        with store.transaction():
            assert store.ingest.write_pull_requests([pr(1, files=3), pr(2)], "r1") == (2, 0)
        with store.transaction():
            assert store.ingest.write_pull_requests([pr(1, T0 + timedelta(days=1), "Fix it again", files=1)], "r2") == (
                0,
                1,
            )
        assert table_count(store, "pull_requests") == 2
        assert table_count(store, "pr_files") == 2
        assert table_count(store, "pr_issue_links") == 2
        title = store.connection.execute("SELECT title FROM pull_requests WHERE number = 1").fetchone()
        assert title == ("Fix it again",)


def test_a_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.ingest.write_pull_requests([pr(1)], "r1")
            store.ingest.advance_watermark(REPO, "pulls", T0)
            raise RuntimeError("crash in the middle of a batch")
        assert table_count(store, "pull_requests") == 0
        assert table_count(store, "pr_files") == 0
        assert store.ingest.watermark(REPO, "pulls") is None


def test_watermark_only_moves_forward(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        store.ingest.advance_watermark(REPO, "pulls", T0 + timedelta(hours=2))
        store.ingest.advance_watermark(REPO, "pulls", T0)
        assert store.ingest.watermark(REPO, "pulls") == T0 + timedelta(hours=2)
        assert store.ingest.watermark(REPO, "issues") is None
        assert store.ingest.watermarks() == {REPO: {"pulls": T0 + timedelta(hours=2)}}


def test_blob_contents_are_stored_once_per_sha(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        blob = BlobRecord("e" * 40, 5, False, False, False, "hello")
        store.ingest.insert_blobs([blob])
        store.ingest.insert_blobs([blob, BlobRecord("f" * 40, 3, True, False, False, None)])
        assert table_count(store, "blobs") == 2
        assert store.ingest.missing_blobs(["e" * 40, "0" * 40]) == {"0" * 40}


def test_skipping_a_pull_request_removes_its_kept_copy(tmp_path: Path) -> None:
    with Store.open(tmp_path / "swerl.duckdb") as store:
        store.ingest.write_pull_requests([pr(3)], "r1")
        store.ingest.record_skips([SkippedPR(REPO, 3, "head_commit_missing", T0)], "r2")
        assert table_count(store, "pull_requests") == 0
        assert table_count(store, "pr_files") == 0
        assert store.connection.execute("SELECT reason FROM skipped_prs").fetchall() == [("head_commit_missing",)]
        store.ingest.write_pull_requests([pr(3)], "r3")
        assert table_count(store, "skipped_prs") == 0


def test_comment_gaps_are_issues_with_fewer_stored_comments_than_github_counts(tmp_path: Path) -> None:
    from swerl_core.store import CommentRecord

    with Store.open(tmp_path / "swerl.duckdb") as store:
        store.ingest.upsert_issues([issue(1, comments=2), issue(2, comments=1), issue(3, comments=0)])
        store.ingest.upsert_comments([CommentRecord(REPO, 10, 2, "bob", "User", "hint", T0, T0)])
        assert store.ingest.issues_missing_comments(REPO, [1, 2, 3]) == [1]


def test_hints_view_keeps_only_comments_before_the_first_commit(tmp_path: Path) -> None:
    from swerl_core.store import CommentRecord

    with Store.open(tmp_path / "swerl.duckdb") as store:
        store.ingest.write_pull_requests([pr(5)], "r1")  # links issue 1, first commit at T0
        store.ingest.upsert_comments(
            [
                CommentRecord(REPO, 1, 1, "bob", "User", "before", T0 - timedelta(hours=1), T0),
                CommentRecord(REPO, 2, 1, "bob", "User", "after", T0 + timedelta(hours=1), T0),
            ]
        )
        rows = store.connection.execute("SELECT pr_number, body FROM pr_issue_hints").fetchall()
        assert rows == [(5, "before")]


def test_runs_left_running_by_a_dead_ingest_are_marked_aborted_when_the_next_one_starts(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    with Store.open(path) as store:
        run_id = store.ingest.start_run([REPO])
    with Store.open(path) as store, store.ingest.lock():
        other = store.ingest.start_run([REPO])
        status = store.connection.execute("SELECT status FROM ingest_runs WHERE id = ?", [run_id]).fetchone()
        assert status == ("aborted",)
        store.ingest.finish_run(
            other, RunTotals(status="ok", prs_new=2, skipped_by_reason={"draft": 1}, api_requests=9)
        )
        row = store.connection.execute(
            "SELECT status, prs_new, skipped_by_reason_json, api_requests FROM ingest_runs WHERE id = ?",
            [other],
        ).fetchone()
        assert row == ("ok", 2, '{"draft": 1}', 9)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from swerl_core.store import Store
    store = Store.open(sys.argv[1])
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_second_writer_is_told_which_pid_uses_the_database(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=f"database is in use by PID {holder.pid}"):
            Store.open(path)
        with pytest.raises(StoreError, match=f"database is in use by PID {holder.pid}"):
            Store.open(path, read_only=True)
    finally:
        holder.kill()
        holder.wait()
    with Store.open(path) as store:  # the kernel released the dead holder's lock
        assert store.schema_version() == MIGRATIONS[-1].version


def test_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(path).parent.mkdir()
    lock_path(path).write_text(f"{dead.pid}\n")
    with Store.open(path):
        assert lock_path(path).read_text().strip() == str(os.getpid())


def test_same_process_cannot_open_two_writers(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    with Store.open(path), pytest.raises(StoreError, match=f"in use by PID {os.getpid()}"):
        Store.open(path)


def test_status_lists_each_repository_with_counts_and_watermark(tmp_path: Path) -> None:
    from swerl_core.store import RepoRecord

    with Store.open(tmp_path / "swerl.duckdb") as store:
        store.ingest.upsert_repo(RepoRecord(REPO, 1, "/tmp/x.git", "main"))
        store.ingest.write_pull_requests([pr(1), pr(2)], "r1")
        store.ingest.upsert_issues([issue(1)])
        store.ingest.advance_watermark(REPO, "pulls", T0)
        run = store.ingest.start_run([REPO])
        store.ingest.finish_run(run, RunTotals(status="ok"))
        (status,) = store.ingest.repo_status()
        assert (status.name, status.pull_requests, status.issues, status.watermark) == (REPO, 2, 1, T0)
        assert status.last_run_status == "ok"


@pytest.fixture
def full_database(tmp_path: Path) -> Path:
    """A swerl database with enough rows to span many blocks."""
    path = tmp_path / "swerl.duckdb"
    with Store.open(path) as store:
        store.connection.execute(
            "CREATE TABLE filler AS SELECT range AS i, repeat('x', 80) || range AS s FROM range(200000)"
        )
    return path


def _damage(path: Path, how: str) -> None:
    with path.open("r+b") as f:
        if how.startswith("garbage_at_"):
            f.seek(int(how.rsplit("_", 1)[1]))
            f.write(bytes(range(256)) * 2)
        else:
            f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize(
    ("how", "read_only"), [("garbage_at_13000", False), ("garbage_at_300000", False), ("cut_in_half", False),
                           ("cut_in_half", True)]
)  # fmt: skip
def test_damaged_database_is_reported_plainly_and_never_written(full_database: Path, how: str, read_only: bool) -> None:
    _damage(full_database, how)
    before = full_database.read_bytes()
    with pytest.raises(StoreError) as failure:
        Store.open(full_database, read_only=read_only)
    message = str(failure.value)
    assert "is damaged" in message and "did not write" in message and "Move it aside" in message
    assert "in use" not in message and "\n" not in message
    assert full_database.read_bytes() == before
    assert not full_database.with_name(full_database.name + ".wal").exists()


def test_a_file_that_is_not_a_database_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    path.write_text("hello, not a database\n" * 500)
    with pytest.raises(StoreError, match="is damaged"):
        Store.open(path)
    assert path.read_text() == "hello, not a database\n" * 500


def test_garbage_in_one_of_the_two_database_headers_is_survived_not_called_in_use(full_database: Path) -> None:
    _damage(full_database, "garbage_at_5000")  # DuckDB keeps two database headers and uses the intact one
    with Store.open(full_database, read_only=True) as store:
        assert store.connection.execute("SELECT count(*) FROM filler").fetchone() == (200000,)


_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from swerl_core.store import RepoRecord, Store
    store = Store.open(sys.argv[1])
    store.ingest.upsert_repo(RepoRecord("acme/textkit", 1, "/tmp/x.git", "main"))
    store.ingest.start_run(["acme/textkit"])
    store.connection.execute("CHECKPOINT")
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_status_shows_a_run_killed_with_sigkill_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    finally:
        writer.kill()  # SIGKILL: the run row stays "running"
        writer.wait()
    with Store.open(path, read_only=True) as store:
        [row] = store.ingest.repo_status()
    assert row.last_run_status == "interrupted"
    status = subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", "--home", str(tmp_path), "status"], capture_output=True, text=True
    )
    assert status.returncode == 0 and "last run interrupted at" in status.stdout, status.stderr
