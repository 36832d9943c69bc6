"""Ingest end to end: PyGithub over real HTTP against the fake GitHub server, real git mirrors, real DuckDB.

Every fault of issue 3 has a test here. Rate-limit waits are made short through settings (Retry-After: 1,
a 0.2 s secondary wait, a 3 s bound), so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from swerl_core.cli import main as cli_main
from swerl_core.config import Secret, Settings, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import (
    ADA,
    CommitSpec,
    PullSpec,
    SampleWorld,
    Write,
)
from swerl_core.ingest import IngestError, IngestRequest, IngestResult, run
from swerl_core.store import Store

TOKEN = "ghp_swerlTestToken0123456789abcdefXYZ"
REPO = "acme/textkit"
KEPT = {
    2,
    4,
    6,
    7,
    9,
    11,
    12,
    14,
    16,
    18,
    20,
    22,
    23,
    25,
    27,
    28,
    30,
    32,
    33,
    35,
    37,
    39,
    41,
    42,
    47,
    49,
    50,
    54,
    56,
    58,
}
# What changes between two runs that wrote the same data: run ids, write times, the mirror's location.
VOLATILE = {
    "pull_requests": ("run_id", "ingested_at"),
    "skipped_prs": ("run_id",),
    "watermarks": ("updated_at",),
    "repos": ("first_seen_at", "updated_at", "mirror_path"),
}
DATA_TABLES = (
    "repos",
    "pull_requests",
    "pr_files",
    "blobs",
    "issues",
    "issue_comments",
    "pr_issue_links",
    "skipped_prs",
    "watermarks",
)


@pytest.fixture
def world(sample_world: SampleWorld, tmp_path: Path) -> SampleWorld:
    """A private copy of the sample world that a test may change."""
    return sample_world.copy_to(tmp_path / "world")


@pytest.fixture
def server(sample_world: SampleWorld) -> Iterator[FakeGitHub]:
    """The fake GitHub server over the pristine sample world, accepting ``TOKEN``."""
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        yield fake


def settings_for(home: Path, url: str, **overrides: Any) -> Settings:
    """Test settings: no throttle, tiny backoffs, short rate-limit bounds, nothing from the environment."""
    values = {
        "home": home,
        "github.api_url": url,
        "github.seconds_between_requests": 0,
        "github.backoff_s": 0.01,
        "github.max_backoff_s": 0.05,
        "github.secondary_rate_wait_s": 0.2,
        "github.max_rate_limit_wait_s": 3,
        "github.timeout_s": 1,
        "ingest.git_workers": 2,
        "github.local_clones": True,
    }
    values.update(overrides)
    return load_settings(env={}, overrides=values)


def run_ingest(
    home: Path, url: str, repos: tuple[str, ...] = (REPO,), token: str | None = TOKEN, **overrides: Any
) -> IngestResult:
    settings = settings_for(home, url, **overrides)
    return run(settings, IngestRequest(repos=repos, token=Secret(token) if token else None))


def contents(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's rows (volatile columns left out), sorted: what "the same data" means."""
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        out = {}
        for table in DATA_TABLES:
            drop = VOLATILE.get(table)
            cols = f"* EXCLUDE ({', '.join(drop)})" if drop else "*"
            out[table] = store.connection.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
        return out


def query(home: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        return store.connection.execute(sql, params or []).fetchall()


def assert_same_data(got: dict[str, list[tuple[Any, ...]]], want: dict[str, list[tuple[Any, ...]]]) -> None:
    for table in DATA_TABLES:
        assert len(got[table]) == len(want[table]), f"{table}: {len(got[table])} rows, clean run has {len(want[table])}"
        assert got[table] == want[table], f"{table} differs from the clean run"


@pytest.fixture
def clean(tmp_path: Path, server: FakeGitHub) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after one undisturbed run over the pristine world (the reference for fault tests)."""
    home = tmp_path / "clean-home"
    run_ingest(home, server.url)
    server.reset_counts()
    return contents(home)


# -- what a clean run collects ------------------------------------------------------------------------


def test_clean_run_keeps_exactly_the_merged_pull_requests(tmp_path: Path, server: FakeGitHub) -> None:
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    kept = {n for (n,) in query(tmp_path, "SELECT number FROM pull_requests")}
    assert kept == KEPT
    skipped = dict(query(tmp_path, "SELECT number, reason FROM skipped_prs"))
    assert skipped == {45: "not_merged", 52: "head_commit_missing"}
    assert 44 not in kept and 60 not in kept  # open draft, open PR: never listed as closed
    assert result.skipped_by_reason == {"head_commit_missing": 1, "not_merged": 1}
    runs = query(tmp_path, "SELECT status, prs_new, prs_skipped, api_requests FROM ingest_runs")
    assert runs == [("ok", len(KEPT), 2, result.api_requests)]


def test_frugal_run_uses_list_endpoints_and_few_requests(tmp_path: Path, server: FakeGitHub) -> None:
    result = run_ingest(tmp_path, server.url)
    paths = [r.path for r in server.requests]
    assert result.api_requests == server.request_count
    assert not any(p.startswith(f"/repos/{REPO}/pulls/") for p in paths), "no per-PR API calls"
    assert paths.count("/graphql") == 1
    single_issues = sorted(p for p in paths if p.startswith(f"/repos/{REPO}/issues/") and "comments" not in p)
    assert single_issues == [f"/repos/{REPO}/issues/36", f"/repos/{REPO}/issues/38"]  # deleted, transferred
    assert result.api_requests <= 12


def test_pull_request_fields_come_from_the_listing_and_git(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    (row,) = query(
        tmp_path,
        """SELECT author_login, author_type, base_ref, head_ref, labels, commit_messages,
                                       merge_base_sha = base_sha, length(merge_commit_sha), n_files,
                                       first_commit_at < created_at, code_patch, test_patch
                                FROM pull_requests WHERE number = 6""",
    )
    assert row[:6] == (
        "dkuznetsov",
        "User",
        "main",
        "ordinal-teens",
        ["bug"],
        ["Add failing test for 11th-13th", "Handle 11-13 in ordinal"],
    )
    assert row[6] is True and row[7] == 40 and row[8] == 2
    assert row[9] is True  # the work started before the PR was opened
    assert row[10].startswith("diff --git a/src/") and row[11].startswith("diff --git a/tests/")


def test_bot_authors_are_kept_and_flagged(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    bots = {
        n: (login, kind)
        for n, login, kind in query(
            tmp_path, "SELECT number, author_login, author_type FROM pull_requests WHERE author_is_bot"
        )
    }
    assert set(bots) == {7, 23, 50}
    assert bots[7] == ("dependabot[bot]", "Bot")


# -- issue linking ------------------------------------------------------------------------------------


def links(home: Path, pr: int) -> set[tuple[str, int, str]]:
    return set(query(home, "SELECT issue_repo, issue_number, kind FROM pr_issue_links WHERE pr_number = ?", [pr]))


def test_issue_links_follow_keywords_commits_graphql_and_stay_cross_repo(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    assert links(tmp_path, 16) == {(REPO, 15, "issue")}  # keyword only in a commit message
    assert links(tmp_path, 18) == {(REPO, 17, "issue")}  # "fixes #8" inside an HTML comment is ignored
    assert links(tmp_path, 20) == {(REPO, 19, "issue"), ("other/lib", 3, "cross_repo")}
    assert links(tmp_path, 49) == {(REPO, 48, "issue")}  # sidebar link, known only to GraphQL
    assert (REPO, 2, "pull_request") in links(tmp_path, 35)  # "fixes #2": #2 is a pull request
    sources = query(tmp_path, "SELECT sources FROM pr_issue_links WHERE pr_number = 16")[0][0]
    assert sources == ["commit"]


def test_without_graphql_access_links_come_from_keywords_alone(tmp_path: Path, server: FakeGitHub) -> None:
    server.inject(r"^/graphql$", status=403, body={"message": "Resource not accessible by integration"})
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    assert links(tmp_path, 2) == {(REPO, 1, "issue")}
    assert links(tmp_path, 49) == set()  # the sidebar link needs GraphQL
    assert [r.path for r in server.requests].count("/graphql") == 1  # asked once, then not again


def test_anonymous_run_skips_graphql(tmp_path: Path, sample_world: SampleWorld) -> None:
    with FakeGitHub(sample_world, token=None) as fake:
        result = run_ingest(tmp_path, fake.url, token=None)
        assert "/graphql" not in [r.path for r in fake.requests]
    assert result.prs_new == len(KEPT)
    assert result.status == "ok" and result.message is not None and "by closing keywords only" in result.message


def test_deleted_and_transferred_issues_are_recorded_not_invented(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    assert (REPO, 36, "missing") in links(tmp_path, 37)  # GET issues/36 answers 410
    assert (REPO, 38, "transferred") in links(tmp_path, 39)  # GET issues/38 answers 301 elsewhere
    assert query(tmp_path, "SELECT count(*) FROM issues WHERE number IN (36, 38) AND repo = ?", [REPO]) == [(0,)]


def test_pull_requests_without_a_linked_issue_are_kept_and_flagged(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    unlinked = {n for (n,) in query(tmp_path, "SELECT number FROM pull_requests WHERE NOT has_linked_issue")}
    assert {7, 12, 23, 28, 33, 42, 50} <= unlinked
    assert {37, 39} <= unlinked  # their only same-repo targets are a deleted and a transferred issue
    assert 2 not in unlinked


def test_hints_are_issue_comments_written_before_the_first_commit(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    rows = query(
        tmp_path,
        """SELECT h.pr_number, h.created_at, p.first_commit_at FROM pr_issue_hints h
                              JOIN pull_requests p ON p.repo = h.repo AND p.number = h.pr_number""",
    )
    assert rows, "the sample world has hint comments"
    assert all(created < first for _, created, first in rows)
    later = query(
        tmp_path,
        """SELECT count(*) FROM pr_issue_links l
                               JOIN pull_requests p ON p.repo = l.repo AND p.number = l.pr_number
                               JOIN issue_comments c ON c.repo = l.repo AND c.issue_number = l.issue_number
                               WHERE l.kind = 'issue' AND c.created_at >= p.first_commit_at""",
    )[0][0]
    assert later > 0, "comments written after the work started exist and are not hints"


def test_null_empty_unicode_and_large_bodies_are_stored_faithfully(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    assert query(tmp_path, "SELECT body FROM issues WHERE repo = ? AND number = 15", [REPO]) == [("",)]
    assert query(tmp_path, "SELECT body FROM pull_requests WHERE number = 16") == [("",)]
    size = query(tmp_path, "SELECT length(body) FROM issues WHERE repo = ? AND number = 21", [REPO])[0][0]
    assert size > 50_000
    texts = [t for (t,) in query(tmp_path, "SELECT title || body FROM pull_requests WHERE number IN (13, 14, 55)")]
    assert any(any(ord(ch) > 0xFFFF for ch in t) for t in texts), "emoji survive the round trip"


# -- files and blobs ----------------------------------------------------------------------------------


def files(home: Path, pr: int) -> dict[str, tuple[Any, ...]]:
    rows = query(
        home,
        "SELECT path, status, old_path, is_binary, is_test, new_blob_sha, old_blob_sha "
        "FROM pr_files WHERE pr_number = ?",
        [pr],
    )
    return {r[0]: r[1:] for r in rows}


def test_renames_deletes_and_binaries_come_from_git(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    renamed = files(tmp_path, 28)
    assert renamed["src/textkit/delimited.py"][:2] == ("R", "src/textkit/csvish.py")
    assert renamed["tests/test_delimited.py"][3] is True  # is_test
    deleted = files(tmp_path, 25)
    assert deleted["src/textkit/legacy.py"][0] == "D" and deleted["src/textkit/legacy.py"][4] is None
    logo = files(tmp_path, 33)["docs/logo.png"]
    assert logo[0] == "A" and logo[2] is True
    blob = query(tmp_path, "SELECT is_binary, content FROM blobs WHERE sha = ?", [logo[4]])
    assert blob == [(True, None)]
    test_patch, code_patch = query(tmp_path, "SELECT test_patch, code_patch FROM pull_requests WHERE number = 28")[0]
    assert "rename to tests/test_delimited.py" in test_patch and "tests/" not in code_patch
    assert "rename to src/textkit/delimited.py" in code_patch and "src/textkit/" not in test_patch


def test_non_utf8_contents_are_decoded_with_replacement_and_flagged(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    sha = files(tmp_path, 30)["src/textkit/accents.py"][4]
    ((invalid, content),) = query(tmp_path, "SELECT invalid_utf8, content FROM blobs WHERE sha = ?", [sha])
    assert invalid is True and "\ufffd" in content
    crlf_sha = files(tmp_path, 32)["src/textkit/newlines.py"][4]
    (crlf,) = query(tmp_path, "SELECT content FROM blobs WHERE sha = ?", [crlf_sha])[0]
    assert "\r\n" in crlf


def test_each_blob_is_stored_once_and_every_text_file_has_both_contents(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    missing = query(
        tmp_path,
        """SELECT count(*) FROM pr_files f WHERE NOT f.is_binary AND (
        (f.new_blob_sha IS NOT NULL AND f.new_blob_sha NOT IN (SELECT sha FROM blobs WHERE content IS NOT NULL)) OR
        (f.old_blob_sha IS NOT NULL AND f.old_blob_sha NOT IN (SELECT sha FROM blobs WHERE content IS NOT NULL)))""",
    )
    assert missing == [(0,)]
    assert query(tmp_path, "SELECT count(*) = count(DISTINCT sha) FROM blobs") == [(True,)]


def test_huge_pull_request_is_taken_from_git_in_one_pass(tmp_path: Path, world: SampleWorld) -> None:
    ops = tuple(Write(f"generated/part_{i:04d}.py", f"VALUE = {i}\n") for i in range(2500))
    world.add_pull(
        REPO,
        PullSpec(
            90,
            "Vendor generated tables",
            "Regenerates everything.",
            ADA,
            "2026-11-20T10:00:00Z",
            "generated",
            (CommitSpec("Regenerate tables", "2026-11-20T09:00:00Z", ops),),
            closed_at="2026-11-21T10:00:00Z",
            merged_by=ADA,
        ),
    )
    with FakeGitHub(world, token=TOKEN) as fake:
        started = time.monotonic()
        result = run_ingest(tmp_path, fake.url)
        elapsed = time.monotonic() - started
        assert not any(r.path.endswith("/pulls/90") for r in fake.requests)
    assert result.status == "ok"
    assert query(tmp_path, "SELECT n_files FROM pull_requests WHERE number = 90") == [(2500,)]
    assert query(tmp_path, "SELECT count(*) FROM pr_files WHERE pr_number = 90 AND status = 'A'") == [(2500,)]
    assert elapsed < 30, f"ingest with a 2500-file PR took {elapsed:.1f}s"


# -- incremental, idempotent --------------------------------------------------------------------------


def test_rerun_writes_nothing_new_and_costs_a_handful_of_requests(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url)
    before = contents(tmp_path)
    server.reset_counts()
    again = run_ingest(tmp_path, server.url)
    assert (again.prs_new, again.prs_updated, again.prs_skipped) == (0, 0, 0)
    assert again.repos[0].prs_unchanged >= 1
    assert again.api_requests == server.request_count <= 5
    assert_same_data(contents(tmp_path), before)


def test_incremental_run_fetches_only_the_new_pull_requests(tmp_path: Path, world: SampleWorld) -> None:
    with FakeGitHub(world, token=TOKEN) as fake:
        run_ingest(tmp_path, fake.url)
        first_watermark = query(tmp_path, "SELECT value FROM watermarks WHERE stream = 'pulls'")[0][0]
        new = world.advance()
        fake.reset_counts()
        result = run_ingest(tmp_path, fake.url)
        requests_made = fake.request_count
    assert result.prs_new == len(new) > 0
    assert result.prs_updated == 0
    assert requests_made == result.api_requests <= 8
    assert (
        query(tmp_path, "SELECT count(*), count(DISTINCT number) FROM pull_requests")[0] == (len(KEPT) + len(new),) * 2
    )
    assert query(tmp_path, "SELECT value FROM watermarks WHERE stream = 'pulls'")[0][0] > first_watermark


def test_since_bounds_the_first_run_by_merge_time(tmp_path: Path, server: FakeGitHub) -> None:
    from datetime import datetime

    since = datetime(2026, 1, 1, tzinfo=UTC)
    run_ingest(tmp_path, server.url, **{"ingest.since": since})
    merged = [m for (m,) in query(tmp_path, "SELECT merged_at FROM pull_requests")]
    assert merged and all(m >= since for m in merged)
    assert len(merged) < len(KEPT)


# -- bad input: nothing written -----------------------------------------------------------------------


def assert_nothing_written(home: Path) -> None:
    if not (home / "swerl.duckdb").exists():  # the first write creates the database
        assert not (home / "mirrors").exists() or not any((home / "mirrors").iterdir())
        return
    for table, rows in contents(home).items():
        assert rows == [], f"{table} has rows"
    assert query(home, "SELECT count(*) FROM ingest_runs") == [(0,)]
    assert not (home / "mirrors").exists() or not any((home / "mirrors").iterdir())


def test_bad_token_gives_one_line_401_error_and_writes_nothing(tmp_path: Path, server: FakeGitHub) -> None:
    with pytest.raises(IngestError) as info:
        run_ingest(tmp_path, server.url, token="ghp_wrongWrongWrong")
    message = str(info.value)
    assert "401" in message and "\n" not in message and "ghp_wrong" not in message
    assert_nothing_written(tmp_path)


def test_private_repository_gives_one_line_404_error_and_writes_nothing(tmp_path: Path, server: FakeGitHub) -> None:
    server.hide_repo(REPO)
    with pytest.raises(IngestError, match="404") as info:
        run_ingest(tmp_path, server.url)
    assert "\n" not in str(info.value)
    assert_nothing_written(tmp_path)


def test_renamed_repository_is_followed_and_recorded(tmp_path: Path, world: SampleWorld) -> None:
    world.rename_repo(REPO, "acme/textkit-ng")
    with FakeGitHub(world, token=TOKEN) as fake:
        result = run_ingest(tmp_path, fake.url, repos=(REPO,))
        assert any(r.status == 301 for r in fake.requests)
    assert result.repos[0].repo == "acme/textkit-ng" and result.repos[0].renamed_from == REPO
    assert query(tmp_path, "SELECT name, renamed_from FROM repos") == [("acme/textkit-ng", REPO)]
    assert query(tmp_path, "SELECT DISTINCT repo FROM pull_requests") == [("acme/textkit-ng",)]


def test_a_repository_renamed_after_its_first_ingest_is_listed_once_under_its_new_name(
    tmp_path: Path, world: SampleWorld
) -> None:
    from swerl_core.store import Store

    with FakeGitHub(world, token=TOKEN) as fake:
        run_ingest(tmp_path, fake.url, repos=(REPO,))
    world.rename_repo(REPO, "acme/textkit-ng")
    with FakeGitHub(world, token=TOKEN) as fake:
        run_ingest(tmp_path, fake.url, repos=(REPO,))
    assert len(query(tmp_path, "SELECT name FROM repos")) == 2  # both names are recorded
    with Store.open(tmp_path / "swerl.duckdb", read_only=True) as store:
        (listed,) = store.ingest.repo_status()
    assert listed.name == "acme/textkit-ng" and listed.pull_requests > 0


# -- skip reasons -------------------------------------------------------------------------------------


def test_missing_base_commit_and_closed_draft_are_skipped_with_reasons(tmp_path: Path, server: FakeGitHub) -> None:
    listing = requests.get(
        f"{server.url}/repos/{REPO}/pulls",
        params={"state": "closed", "sort": "updated", "direction": "desc", "per_page": 100},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=5,
    ).json()
    for pull in listing:
        if pull["number"] == 2:
            pull["base"]["sha"] = "1" * 40  # a base commit the mirror never had (rewritten history)
        if pull["number"] == 45:
            pull["draft"] = True
    server.inject(rf"^/repos/{REPO}/pulls$", status=200, body=listing)
    run_ingest(tmp_path, server.url)
    skipped = dict(query(tmp_path, "SELECT number, reason FROM skipped_prs"))
    assert skipped == {2: "base_commit_missing", 45: "draft", 52: "head_commit_missing"}


# -- faults: rate limits ------------------------------------------------------------------------------


def test_retry_after_is_waited_out_and_counted(tmp_path: Path, server: FakeGitHub, clean: dict) -> None:
    server.inject_retry_after(rf"^/repos/{REPO}/pulls$", seconds=1, status=429)
    server.inject_retry_after(rf"^/repos/{REPO}/issues$", seconds=1, status=403)
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    assert result.rate_limit_waits == 2 and result.rate_limit_wait_s >= 2
    assert result.api_requests == server.request_count
    assert_same_data(contents(tmp_path), clean)


def test_secondary_limit_without_retry_after_waits_the_configured_time(
    tmp_path: Path, server: FakeGitHub, clean: dict
) -> None:
    server.inject_secondary_rate_limit(rf"^/repos/{REPO}/issues/comments$")
    result = run_ingest(tmp_path, server.url)
    assert result.rate_limit_waits == 1 and result.rate_limit_wait_s >= 0.2
    assert_same_data(contents(tmp_path), clean)


def test_exhausted_primary_limit_waits_until_reset(tmp_path: Path, server: FakeGitHub, clean: dict) -> None:
    server.exhaust_rate_limit(reset_in_s=1)
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok" and result.rate_limit_waits >= 1
    assert_same_data(contents(tmp_path), clean)


def test_malformed_retry_after_on_429_falls_back_to_the_secondary_wait(tmp_path: Path, server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{REPO}/pulls$", status=429, headers={"Retry-After": "soon"})
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok", result.message
    assert (result.rate_limit_waits, result.rate_limit_wait_s >= 0.2) == (1, True), "expected one secondary wait"


def test_malformed_retry_after_on_403_still_waits_for_the_exhausted_limit(tmp_path: Path, server: FakeGitHub) -> None:
    reset = str(int(time.time()) + 1)
    headers = {"Retry-After": "soon", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    server.inject(rf"^/repos/{REPO}/issues$", status=403, headers=headers, body={"message": "Forbidden"})
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok", result.message
    assert (result.rate_limit_waits, result.rate_limit_wait_s >= 1.0) == (1, True), "expected a wait until reset"


def test_rate_limit_beyond_the_bound_stops_cleanly_and_rerun_completes(
    tmp_path: Path, server: FakeGitHub, clean: dict
) -> None:
    server.inject_retry_after(rf"^/repos/{REPO}/issues/38$", seconds=999, status=403)  # asked in PR 39's batch
    stopped = run_ingest(tmp_path, server.url, **{"ingest.batch_size": 4})
    assert stopped.status == "stopped" and "rate limit" in (stopped.message or "")
    kept = {n for (n,) in query(tmp_path, "SELECT number FROM pull_requests")}
    assert kept and 39 not in kept and kept < KEPT
    watermark = query(tmp_path, "SELECT value FROM watermarks WHERE stream = 'pulls'")[0][0]
    newest_kept = query(tmp_path, "SELECT max(updated_at) FROM pull_requests")[0][0]
    assert watermark == max(
        newest_kept, query(tmp_path, "SELECT max(updated_at) FROM skipped_prs")[0][0] or newest_kept
    )
    assert query(tmp_path, "SELECT status FROM ingest_runs") == [("stopped",)]
    resumed = run_ingest(tmp_path, server.url, **{"ingest.batch_size": 4})
    assert resumed.status == "ok"
    assert_same_data(contents(tmp_path), clean)


# -- faults: server errors, resets, timeouts ----------------------------------------------------------


def test_server_errors_resets_and_timeouts_are_retried_and_counted(
    tmp_path: Path, server: FakeGitHub, clean: dict
) -> None:
    server.inject(rf"^/repos/{REPO}/pulls$", status=502, times=2)
    server.inject(rf"^/repos/{REPO}/issues$", kind="reset")
    server.inject(rf"^/repos/{REPO}/issues/comments$", kind="delay", delay_s=1.6)  # timeout_s is 1
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    deadline = time.monotonic() + 3
    while server.request_count < result.api_requests and time.monotonic() < deadline:
        time.sleep(0.05)  # the timed-out request is logged when the server finishes sleeping
    assert result.api_requests == server.request_count
    assert_same_data(contents(tmp_path), clean)


def test_persistent_server_errors_fail_with_one_line_and_a_failed_run(tmp_path: Path, server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{REPO}/pulls$", status=503, times=100)
    with pytest.raises(IngestError) as info:
        run_ingest(tmp_path, server.url, **{"github.max_retries": 2})
    assert "\n" not in str(info.value) and "503" in str(info.value)
    assert query(tmp_path, "SELECT status FROM ingest_runs") == [("failed",)]
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(0,)]


def test_an_error_page_is_never_stored_as_data(tmp_path: Path, server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{REPO}/pulls$", status=200, body="<html>Unicorn!</html>")
    with pytest.raises(IngestError, match="something other than a list"):
        run_ingest(tmp_path, server.url)
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(0,)]


# -- secrets ------------------------------------------------------------------------------------------


def test_token_never_reaches_logs_exceptions_database_or_files(
    tmp_path: Path, server: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.inject(rf"^/repos/{REPO}/issues$", status=502)
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    with pytest.raises(IngestError) as bad:
        run_ingest(tmp_path / "other", server.url, token=TOKEN + "x")
    assert TOKEN not in str(bad.value) and TOKEN not in repr(bad.value)
    assert TOKEN not in caplog.text
    assert repr(Secret(TOKEN)) == "Secret('**********')"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"token found in {path}"


# -- crash safety -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rerun_after_kill_leaves_same_rows_as_a_clean_run(tmp_path: Path, server: FakeGitHub, clean: dict) -> None:
    home = tmp_path / "killed-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWERL_", "GITHUB_TOKEN", "GH_TOKEN"))}
    env.update(GITHUB_TOKEN=TOKEN, SWERL_INGEST__BATCH_SIZE="3", SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS="0")
    env.update(SWERL_GITHUB__LOCAL_CLONES="1")
    held = server.inject(rf"^/repos/{REPO}/issues/36$", kind="delay", delay_s=30)  # hold it inside a batch
    proc = subprocess.Popen(
        [sys.executable, "-m", "swerl_core.cli", "--home", str(home), "ingest", "--repo", REPO,
         "--api-url", server.url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while held.times > 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the server takes the fault when the request arrives, then sleeps
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = run_ingest(home, server.url)
    assert 0 < resumed.prs_new < len(KEPT), "the killed run had committed some batches, not all"
    assert_same_data(contents(home), clean)
    assert [s for (s,) in query(home, "SELECT status FROM ingest_runs ORDER BY started_at")] == ["aborted", "ok"]


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_ingest_and_status_print_one_line_per_repository(
    tmp_path: Path, server: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS", "0")
    monkeypatch.setenv("SWERL_GITHUB__LOCAL_CLONES", "1")
    home = tmp_path / "home"
    code = cli_main(["--home", str(home), "ingest", "--repo", REPO, "--repo", "other/lib", "--api-url", server.url])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{REPO}: {len(KEPT)} new") and lines[1].startswith("other/lib: ")
    assert "API requests" in lines[2] and "pull requests" in err
    assert TOKEN not in out + err
    assert cli_main(["--home", str(home), "status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith(f"{REPO}: {len(KEPT)} PRs, 2 skipped") and "watermark 20" in status[0]
    assert "last run ok" in status[0]


def test_cli_errors_are_one_line_and_exit_non_zero(
    tmp_path: Path, server: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_bad")
    monkeypatch.setenv("SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS", "0")
    monkeypatch.setenv("SWERL_GITHUB__LOCAL_CLONES", "1")
    code = cli_main(["--home", str(tmp_path), "ingest", "--repo", REPO, "--api-url", server.url])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "401" in err
    assert cli_main(["--home", str(tmp_path / "empty"), "status"]) != 0
    assert f"no SWERL_HOME at {tmp_path / 'empty'}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["--home", str(tmp_path / "empty"), "status"]) != 0
    assert "run `swerl ingest` first" in capsys.readouterr().err


def test_ingest_runs_table_records_the_run(tmp_path: Path, server: FakeGitHub) -> None:
    result = run_ingest(tmp_path, server.url, repos=(REPO, "other/lib"))
    (row,) = query(
        tmp_path,
        "SELECT repos, prs_new, prs_skipped, skipped_by_reason_json, api_requests, "
        "rate_limit_waits, duration_s > 0, status FROM ingest_runs",
    )
    assert row[0] == [REPO, "other/lib"]
    assert row[1] == result.prs_new and row[2] == 2
    assert json.loads(row[3]) == {"head_commit_missing": 1, "not_merged": 1}
    assert row[4] == result.api_requests and row[5] == 0 and row[6] and row[7] == "ok"


def test_issue_and_comment_watermarks_advance_across_pages(tmp_path: Path, world: SampleWorld) -> None:
    """Listings that span several pages (per_page=5) still move each watermark to the newest item seen."""
    with FakeGitHub(world, token=TOKEN) as fake:
        run_ingest(tmp_path, fake.url, **{"github.per_page": 5})
        marks = dict(query(tmp_path, "SELECT stream, value FROM watermarks WHERE repo = ?", [REPO]))
        newest_issue = query(tmp_path, "SELECT max(updated_at) FROM issues WHERE repo = ?", [REPO])[0][0]
        newest_comment = query(tmp_path, "SELECT max(updated_at) FROM issue_comments WHERE repo = ?", [REPO])[0][0]
        assert marks["comments"] == newest_comment
        assert marks["issues"] >= newest_issue  # PRs share the issues listing and may be newer still
        world.advance()
        fake.reset_counts()
        run_ingest(tmp_path, fake.url, **{"github.per_page": 5})
        asked: dict[str, str] = {}
        for r in fake.requests:
            if r.path.endswith(("/issues", "/issues/comments")):
                asked.setdefault(r.path.rsplit("/", 1)[-1], r.query)  # each listing's first request
    for stream in ("issues", "comments"):
        resume = (marks[stream] - timedelta(seconds=1)).astimezone(UTC)  # a second earlier: none of it is lost
        assert f"since={resume:%Y-%m-%dT%H:%M:%SZ}".replace(":", "%3A") in asked[stream]
    later = dict(query(tmp_path, "SELECT stream, value FROM watermarks WHERE repo = ?", [REPO]))
    assert later["issues"] >= marks["issues"] and later["comments"] >= marks["comments"]


def test_listings_two_a_page_store_what_one_page_stores(tmp_path: Path, server: FakeGitHub, clean: dict) -> None:
    """Two a page, a page of an issue and a PR updated in the same second gives ``since`` nowhere to move:
    the listing pages by number from that ``since`` until a newer item comes, and misses nothing."""
    assert run_ingest(tmp_path / "home", server.url, **{"github.per_page": 2}).status == "ok"
    issue_queries = [r.query for r in server.requests if r.path == f"/repos/{REPO}/issues"]
    assert any("since=" in q and "page=2" in q.split("&") for q in issue_queries), "no same-second page by number"
    assert_same_data(contents(tmp_path / "home"), clean)


def test_issue_listing_that_fails_mid_way_resumes_from_its_watermark(tmp_path: Path, server: FakeGitHub) -> None:
    """Pages committed before a failure stay, with their watermark; the rerun asks from there and converges."""
    listing = rf"^/repos/{REPO}/issues$"
    server.inject(listing, kind="delay", delay_s=0, times=2)  # pages 1 and 2 answered
    failing = server.inject(listing, status=502, times=1000)
    with pytest.raises(IngestError, match="502"):
        run_ingest(tmp_path / "home", server.url, **{"github.per_page": 5, "github.max_retries": 1})
    failing.times = 0
    committed = query(tmp_path / "home", "SELECT count(*) FROM issues WHERE repo = ?", [REPO])[0][0]
    ((mark,),) = query(tmp_path / "home", "SELECT value FROM watermarks WHERE repo = ? AND stream = 'issues'", [REPO])
    assert 0 < committed < 10  # two pages of five, PRs among them
    server.reset_counts()
    assert run_ingest(tmp_path / "home", server.url, **{"github.per_page": 5}).status == "ok"
    first = next(r.query for r in server.requests if r.path == f"/repos/{REPO}/issues")
    resume = (mark - timedelta(seconds=1)).astimezone(UTC)
    assert f"since={resume:%Y-%m-%dT%H:%M:%SZ}".replace(":", "%3A") in first
    assert run_ingest(tmp_path / "fresh", server.url, **{"github.per_page": 5}).status == "ok"
    assert_same_data(contents(tmp_path / "home"), contents(tmp_path / "fresh"))


def test_an_ingest_of_no_repository_is_refused_naming_how_to_set_them(tmp_path: Path) -> None:
    from swerl_core.ingest import requested_repos

    settings = load_settings(env={}, overrides={"home": tmp_path})
    with pytest.raises(IngestError, match="no repository to ingest") as refused:
        requested_repos(settings, None)
    assert "SWERL_INGEST__REPOS=" in str(refused.value) and "\n" not in str(refused.value)
    assert requested_repos(settings, ["acme/textkit"]) == ("acme/textkit",)
    configured = load_settings(env={"SWERL_INGEST__REPOS": "acme/textkit,other/lib"}, overrides={"home": tmp_path})
    assert requested_repos(configured, []) == ("acme/textkit", "other/lib")
    with pytest.raises(IngestError, match="no repository to ingest"):
        run(settings, IngestRequest())
