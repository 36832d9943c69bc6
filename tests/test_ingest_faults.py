"""The ingest fault matrix: each injectable fault on each endpoint (GraphQL included), then a clean rerun.

Whatever the faulty run did (finish, stop or fail with one line), the faulty run plus one clean rerun
must leave DuckDB holding exactly what one clean run holds: every data table compared row by row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ingest import REPO, TOKEN, assert_same_data, contents, run_ingest

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld
from swerl_core.ingest import IngestError

ENDPOINTS = {
    "repo": rf"^/repos/{REPO}$",
    "pulls": rf"^/repos/{REPO}/pulls$",
    "issues": rf"^/repos/{REPO}/issues$",
    "comments": rf"^/repos/{REPO}/issues/comments$",
    "single_issue": rf"^/repos/{REPO}/issues/\d+$",
    "graphql": r"^/graphql$",
}
# name: the fault's inject() arguments
FAULTS: dict[str, dict[str, Any]] = {
    "502_always": {"status": 502, "times": 1000},
    "500_once": {"status": 500, "times": 1},
    "reset_always": {"kind": "reset", "times": 1000},
    "reset_once": {"kind": "reset", "times": 1},
    "not_json": {"status": 200, "body": "<html>oops</html>", "times": 1000},
    "wrong_shape": {"status": 200, "body": {"unexpected": True}, "times": 1000},
    "errors_only": {"status": 200, "body": {"errors": [{"message": "Something went wrong"}]}, "times": 1000},
    "timeout_once": {"kind": "delay", "delay_s": 1.5, "times": 1},  # the client gives up after timeout_s=1
}


@pytest.fixture(scope="module")
def clean_run(sample_world: SampleWorld, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after one undisturbed run (the reference every case converges to)."""
    home = tmp_path_factory.mktemp("clean-home")
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        assert run_ingest(home, fake.url).status == "ok"
    return contents(home)


@pytest.fixture
def server(sample_world: SampleWorld) -> Iterator[FakeGitHub]:
    """A fresh fake GitHub over the pristine sample world."""
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        yield fake


SLOW_FAULTS = {"timeout_once", "reset_always"}
"""Faults that cost the client timeouts or many retries: seconds per case, so marked slow."""


@pytest.mark.parametrize(
    "fault", [pytest.param(f, marks=[pytest.mark.slow] if f in SLOW_FAULTS else []) for f in sorted(FAULTS)]
)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_faulty_run_then_clean_rerun_equals_one_clean_run(
    tmp_path: Path, server: FakeGitHub, clean_run: dict, endpoint: str, fault: str
) -> None:
    injected = server.inject(ENDPOINTS[endpoint], **FAULTS[fault])
    try:
        result = run_ingest(tmp_path, server.url, **{"github.max_retries": 2})
        assert result.status in ("ok", "stopped")
    except IngestError as exc:
        assert "\n" not in str(exc)
    injected.times = 0  # the fault goes away; the rerun sees a healthy server
    assert run_ingest(tmp_path, server.url).status == "ok"
    assert_same_data(contents(tmp_path), clean_run)


def test_graphql_down_fails_the_run_instead_of_losing_links(tmp_path: Path, server: FakeGitHub) -> None:
    server.inject(r"^/graphql$", status=502, times=1000)
    with pytest.raises(IngestError, match="GraphQL closing references failed.*rerun"):
        run_ingest(tmp_path, server.url, **{"github.max_retries": 1})


@pytest.mark.parametrize("number", [403, 4290])
def test_server_errors_on_a_url_holding_403_or_429_are_not_a_rate_limit(server: FakeGitHub, number: int) -> None:
    """Only the HTTP status decides "rate limited"; the digits of a URL (a port, an issue number) never do."""
    from swerl_core.config import GitHubConfig, Secret
    from swerl_core.github import GitHubError, RateLimited, connect, get_json

    config = GitHubConfig(api_url=server.url, max_retries=1, backoff_s=0.01, seconds_between_requests=0)
    server.inject(rf"^/repos/{REPO}/issues/{number}$", status=502, times=1000)
    with pytest.raises(GitHubError) as failure:
        get_json(connect(config, Secret(TOKEN)), f"/repos/{REPO}/issues/{number}")
    assert not isinstance(failure.value, RateLimited), str(failure.value)
    assert "502" in str(failure.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_on_this_machine_fails_at_once_naming_the_url() -> None:
    import time

    from swerl_core.config import GitHubConfig
    from swerl_core.github import GitHubError, connect, get_json

    port = _closed_port()
    gh = connect(GitHubConfig(api_url=f"http://127.0.0.1:{port}", max_retries=5, backoff_s=1.0), None)
    started = time.monotonic()
    with pytest.raises(GitHubError) as refused:
        get_json(gh, f"/repos/{REPO}")
    assert time.monotonic() - started < 3, "a refused local connection must not be retried with backoff"
    assert f"http://127.0.0.1:{port}/repos/{REPO}: connection refused" in str(refused.value)


def test_an_unreachable_api_names_the_url_it_tried() -> None:
    import requests

    from swerl_core.github import describe_failure

    failure = requests.exceptions.ConnectionError("Name or service not known")
    failure.request = requests.Request("GET", "https://api.github.com:443/repos/o/r?per_page=100").prepare()
    message = str(describe_failure(failure, "/repos/o/r"))
    assert message == "cannot reach GitHub at https://api.github.com/repos/o/r (connection failed after every retry)"
