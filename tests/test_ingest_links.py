"""Runs that could not ask every link source mark their PRs, and the next run that can completes them.

GitHub's own closing references come from GraphQL, which needs a token with GraphQL access. A run without
one links by keywords alone (on the sample world PR 49's sidebar link and PR 39's cross-repository link
exist only in GraphQL, and every other link lacks its ``graphql`` source). Those PRs are marked; a later
run with a token re-links exactly them with batched GraphQL queries, so anonymous run + token run leaves
DuckDB identical to one token run (every table compared, as the fault matrix does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_ingest import KEPT, REPO, TOKEN, assert_same_data, contents, query, run_ingest

from swerl_core.cli import main as cli_main
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld
from swerl_core.github.graphql import closing_references_query
from swerl_core.ingest import IngestError

NO_ACCESS = {"status": 403, "body": {"message": "Resource not accessible by integration"}}


@pytest.fixture(scope="module")
def clean_run(sample_world: SampleWorld, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after one undisturbed token run (what every case must converge to)."""
    home = tmp_path_factory.mktemp("clean-home")
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        assert run_ingest(home, fake.url).status == "ok"
    return contents(home)


@pytest.fixture
def server(sample_world: SampleWorld) -> Iterator[FakeGitHub]:
    """A fresh fake GitHub over the pristine sample world, accepting ``TOKEN`` (and anonymous requests)."""
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        yield fake


def marked(home: Path) -> set[int]:
    rows = query(home, "SELECT number FROM pull_requests WHERE links_missing_source = 'graphql'")
    return {n for (n,) in rows}


def graphql_links(home: Path) -> set[tuple[int, str, int]]:
    rows = query(home, "SELECT pr_number, issue_repo, issue_number FROM pr_issue_links WHERE sources = ['graphql']")
    return set(rows)


def test_anonymous_run_marks_every_kept_pull_request(tmp_path: Path, server: FakeGitHub) -> None:
    result = run_ingest(tmp_path, server.url, token=None)
    assert result.status == "ok" and (result.message or "").startswith("no token:")  # the mark migrations read
    assert "an ingest with GITHUB_TOKEN set completes them" in (result.message or "")
    assert result.repos[0].links_missing_source == "graphql"
    assert marked(tmp_path) == KEPT
    assert graphql_links(tmp_path) == set()  # the loss the mark stands for: these two exist only in GraphQL


def test_anonymous_then_token_run_equals_one_token_run(tmp_path: Path, server: FakeGitHub, clean_run: dict) -> None:
    run_ingest(tmp_path, server.url, token=None)
    server.reset_counts()
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok" and result.message is None
    assert result.repos[0].prs_relinked == len(KEPT) and result.prs_new == result.prs_updated == 0
    assert_same_data(contents(tmp_path), clean_run)
    assert graphql_links(tmp_path) == {(39, "other/lib", 5), (49, REPO, 48)}
    paths = [r.path for r in server.requests]
    assert paths.count("/graphql") == 1, "every marked PR is asked in one batched query"
    assert not any(p.startswith(f"/repos/{REPO}/pulls/") for p in paths), "no per-PR REST calls"
    assert marked(tmp_path) == set()
    server.reset_counts()
    assert run_ingest(tmp_path, server.url).repos[0].prs_relinked == 0  # the mark is gone: nothing asked again
    assert "/graphql" not in [r.path for r in server.requests]


def test_relinking_is_batched_by_the_graphql_batch_size(tmp_path: Path, server: FakeGitHub, clean_run: dict) -> None:
    run_ingest(tmp_path, server.url, token=None)
    server.reset_counts()
    run_ingest(tmp_path, server.url, **{"github.graphql_batch_size": 8, "ingest.batch_size": 7})
    assert [r.path for r in server.requests].count("/graphql") == -(-len(KEPT) // 8)
    assert_same_data(contents(tmp_path), clean_run)


def test_second_anonymous_run_keeps_the_mark(tmp_path: Path, server: FakeGitHub) -> None:
    run_ingest(tmp_path, server.url, token=None)
    assert run_ingest(tmp_path, server.url, token=None).repos[0].prs_relinked == 0
    assert marked(tmp_path) == KEPT


def test_token_without_graphql_access_marks_and_a_later_token_completes(
    tmp_path: Path, server: FakeGitHub, clean_run: dict
) -> None:
    denied = server.inject(r"^/graphql$", times=1000, **NO_ACCESS)
    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok" and "GraphQL closing references unavailable" in (result.message or "")
    assert marked(tmp_path) == KEPT
    denied.times = 0  # a token with GraphQL access, or the integration granted it
    run_ingest(tmp_path, server.url)
    assert_same_data(contents(tmp_path), clean_run)


@pytest.mark.parametrize("fault", [{"status": 502}, NO_ACCESS], ids=["502", "403"])
def test_graphql_failing_partway_then_clean_rerun_equals_one_token_run(
    tmp_path: Path, server: FakeGitHub, clean_run: dict, fault: dict[str, Any]
) -> None:
    """The first GraphQL query answers, the second fails: the run fails (5xx) or marks (no access); a rerun
    converges."""
    server.inject(r"^/graphql$", kind="delay", delay_s=0, times=1)  # the first query passes untouched
    failing = server.inject(r"^/graphql$", times=1000, **fault)
    overrides = {"github.graphql_batch_size": 10, "github.max_retries": 1}
    try:
        run_ingest(tmp_path, server.url, **overrides)
    except IngestError as exc:
        assert fault["status"] == 502 and "GraphQL closing references failed" in str(exc)
    else:
        assert fault["status"] == 403 and marked(tmp_path) == KEPT
    failing.times = 0
    assert run_ingest(tmp_path, server.url, **overrides).status == "ok"
    assert_same_data(contents(tmp_path), clean_run)


def graphql_answer(server: FakeGitHub, numbers: range) -> dict[str, Any]:
    """The fake server's own GraphQL answer for ``numbers`` (numbers that are issues come back null)."""
    query = closing_references_query(list(numbers))
    owner, name = REPO.split("/")
    response = requests.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": {"owner": owner, "name": name}},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=10,
    )
    data = response.json()["data"]
    repository = {key: node for key, node in data["repository"].items() if node is not None}
    return {"data": {"repository": repository}}


def test_one_pull_request_graphql_cannot_resolve_costs_only_its_own_links(
    tmp_path: Path, server: FakeGitHub, clean_run: dict
) -> None:
    """GitHub answers null and one NOT_FOUND error for a PR it cannot resolve (deleted after the listing).

    PyGithub turns such an answer into a 404 for the whole query, which ingest took for "no GraphQL access":
    every PR of the repository lost its GraphQL links, silently. Now only that PR is marked, and a rerun
    completes it.
    """
    answer = graphql_answer(server, range(1, 61))
    answer["data"]["repository"]["pr49"] = None
    answer["errors"] = [
        {
            "type": "NOT_FOUND",
            "path": ["repository", "pr49"],
            "message": "Could not resolve to a PullRequest with the number of 49.",
        }
    ]
    answering = server.inject(r"^/graphql$", status=200, body=answer, times=1)
    result = run_ingest(tmp_path, server.url)
    assert answering.times == 0 and result.status == "ok"
    assert marked(tmp_path) == {49}
    assert (39, "other/lib", 5) in graphql_links(tmp_path)  # every other PR kept its GraphQL links
    server.reset_counts()
    assert run_ingest(tmp_path, server.url).repos[0].prs_relinked == 1
    assert [r.path for r in server.requests].count("/graphql") == 1
    assert_same_data(contents(tmp_path), clean_run)


def test_cli_says_once_the_links_are_marked_then_completed(
    tmp_path: Path, server: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS", "0")
    monkeypatch.setenv("SWERL_GITHUB__LOCAL_CLONES", "1")
    argv = ["--home", str(tmp_path), "ingest", "--repo", REPO, "--api-url", server.url]
    assert cli_main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("no token:") == 1 and "an ingest with GITHUB_TOKEN set completes them" in err, err
    assert cli_main(["--home", str(tmp_path), "status"]) == 0
    assert f"; {len(KEPT)} PRs linked without GraphQL (an ingest with a token" in capsys.readouterr().out
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{REPO}: 0 new, 0 updated, {len(KEPT)} re-linked, ")
    assert cli_main(["--home", str(tmp_path), "status"]) == 0
    assert "without GraphQL" not in capsys.readouterr().out


def test_a_pull_request_closing_many_issues_keeps_every_graphql_link(tmp_path: Path, sample_world: SampleWorld) -> None:
    """GraphQL used to be asked for the first 25 closing references of each PR: the rest were lost, silently."""
    world = sample_world.copy_to(tmp_path / "world")
    repo = world.repos[REPO]
    closes = [(REPO, n) for n in sorted(repo.issues)] + [("other/lib", n) for n in range(1, 7)]
    assert len(closes) == 30
    repo.pulls[49].closing_issues = [f"{name}#{n}" for name, n in closes]
    repo.touch()
    with FakeGitHub(world, token=TOKEN) as fake:
        run_ingest(tmp_path / "home", fake.url)
    got = query(tmp_path / "home", "SELECT issue_repo, issue_number FROM pr_issue_links WHERE pr_number = 49")
    assert sorted(got) == sorted(closes)
