"""A GitHub-compatible server that lies: every answer ends in a clear error or a correct result.

The fake server's scripted faults answer the repository, listings and GraphQL with adversarial JSON
(names with ``..``, odd characters, wrong types, huge values, ``file://`` and foreign-host clone URLs).
Nothing may ever be written outside ``SWERL_HOME``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_ingest import REPO, TOKEN, assert_same_data, contents, query, run_ingest

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld
from swerl_core.ingest import IngestError
from swerl_core.repo_names import UnsafeNameError, check_clone_url, is_repository_name


@pytest.fixture
def server(sample_world: SampleWorld) -> Iterator[FakeGitHub]:
    """A fresh fake GitHub over the pristine sample world."""
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        yield fake


def repo_answer(server: FakeGitHub, sample_world: SampleWorld, **changes: Any) -> dict[str, Any]:
    """GitHub's answer for ``GET /repos/acme/textkit`` with ``changes`` applied."""
    repo = sample_world.repos[REPO]
    return {"id": 1, "full_name": REPO, "clone_url": repo.clone_url, "default_branch": "main", **changes}


def served_page(server: FakeGitHub, path: str, per_page: int = 5, **params: Any) -> list[dict[str, Any]]:
    """The first page the fake GitHub serves for ``path`` (to hand back altered as an injected answer)."""
    import requests

    answer = requests.get(f"{server.url}{path}", params={"per_page": per_page, **params}, timeout=10,
                          headers={"Authorization": f"token {TOKEN}"})  # fmt: skip
    return answer.json()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize(
    "full_name",
    [
        "x/../../../../../../tmp/pwned",
        "../../outside/x",
        "acme/..",
        "acme/textkit/../../../escape",
        "acme/text kit",
        "acme/textkit\n",
        "acme\\..\\x/y",
        "",
        12345,
        None,
        ["acme", "textkit"],
        "a" * 5000 + "/b",
    ],
)
def test_hostile_full_name_is_refused_and_nothing_leaves_home(
    tmp_path: Path, server: FakeGitHub, sample_world: SampleWorld, full_name: Any
) -> None:
    home = tmp_path / "deep" / "er" / "home"
    home.mkdir(parents=True)
    outside_before = files_under(tmp_path) - files_under(home)
    server.inject(rf"^/repos/{REPO}$", status=200, body=repo_answer(server, sample_world, full_name=full_name), times=9)
    with pytest.raises(IngestError) as failure:
        run_ingest(home, server.url)
    assert "\n" not in str(failure.value)
    assert "full_name" in str(failure.value)
    assert files_under(tmp_path) - files_under(home) == outside_before, "something was written outside SWERL_HOME"
    assert not Path("/tmp/pwned.git").exists()


@pytest.mark.parametrize(
    ("clone_url", "why"),
    [
        ("file:///etc", "local clone URL"),
        ("/srv/other/repo.git", "local clone URL"),
        ("https://evil.example/acme/textkit.git", "only http://127.0.0.1"),
        ("ssh://127.0.0.1/acme/textkit.git", "only http://127.0.0.1"),
        ("ext::sh -c touch% /tmp/pwned", "only http://127.0.0.1"),
        ("http://127.0.0.1:99999/x.git", "malformed clone URL"),
        ("", "no full_name/clone_url"),
        (["https://github.com/a/b"], "unusable clone URL"),
    ],
)
def test_clone_url_off_the_api_host_is_refused(
    tmp_path: Path, server: FakeGitHub, sample_world: SampleWorld, clone_url: Any, why: str
) -> None:
    server.inject(rf"^/repos/{REPO}$", status=200, body=repo_answer(server, sample_world, clone_url=clone_url), times=9)
    with pytest.raises(IngestError, match=why):
        run_ingest(tmp_path, server.url, **{"github.local_clones": False})
    assert not (tmp_path / "mirrors").exists()


def test_local_world_needs_the_local_clone_setting(tmp_path: Path, server: FakeGitHub) -> None:
    with pytest.raises(IngestError, match="local_clones") as refused:
        run_ingest(tmp_path, server.url, **{"github.local_clones": False})
    says = str(refused.value)  # how to set it, both ways
    assert "SWERL_GITHUB__LOCAL_CLONES=true" in says and "github.local_clones: true" in says, says
    assert run_ingest(tmp_path / "allowed", server.url).status == "ok"


def test_clone_url_rules_for_the_public_api_and_enterprise() -> None:
    public = "https://api.github.com"
    assert check_clone_url("https://github.com/acme/textkit.git", public, False)
    for bad in ("http://github.com/a/b.git", "https://gitlab.com/a/b.git", "https://github.com.evil/a/b"):
        with pytest.raises(UnsafeNameError):
            check_clone_url(bad, public, False)
    enterprise = "https://ghe.corp.example/api/v3"
    assert check_clone_url("https://ghe.corp.example/a/b.git", enterprise, False)
    with pytest.raises(UnsafeNameError):
        check_clone_url("https://github.com/a/b.git", enterprise, False)
    with pytest.raises(UnsafeNameError):
        check_clone_url("file:///srv/a.git", enterprise, False)
    assert check_clone_url("file:///srv/a.git", enterprise, True)


def test_repository_names_follow_githubs_characters() -> None:
    good = ["acme/textkit", "a/b", "octo-cat/hello.world", "user_emu/x_y", "A1/.github", "o/-x"]
    bad = ["acme", "a/b/c", "a/..", "a/.", "../a", "-a/b", "a__b/c", "a_/b", "a/b c", "a/b?x=1", "a/b#1", "a/é"]
    assert all(is_repository_name(n) for n in good)
    assert not any(is_repository_name(n) for n in bad)
    assert not is_repository_name("a/" + "x" * 101) and not is_repository_name("o" * 40 + "/x")


@pytest.mark.parametrize(
    "pull_change",
    [
        {"number": "7"},
        {"number": None},
        {"updated_at": 12345},
        {"updated_at": "yesterday"},
        {"base": None},
        {"head": {"sha": ""}},
        {"head": {"sha": "../../../../etc/passwd", "ref": "x"}},
        {"number": 10**20},
        {"number": -5},
        {"number": True},
        {"title": 5},
        {"body": ["a"]},
        {"merge_commit_sha": 7},
        {"merged_at": "9999-99-99"},
    ],
)
def test_malformed_pull_listing_fails_with_one_line_and_writes_no_pull(
    tmp_path: Path, server: FakeGitHub, pull_change: dict[str, Any]
) -> None:
    page = served_page(server, f"/repos/{REPO}/pulls", 100, state="closed", sort="updated", direction="desc")
    page[0] = {**page[0], **pull_change}
    server.inject(rf"^/repos/{REPO}/pulls$", status=200, body=page, times=9)
    with pytest.raises(IngestError) as failure:
        run_ingest(tmp_path, server.url)
    assert "\n" not in str(failure.value)
    from test_ingest import query

    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(0,)]


@pytest.mark.parametrize(
    ("change", "column", "stored"),
    [({"id": "x"}, "github_id", None), ({"labels": "bug"}, "labels", []), ({"draft": "yes"}, "number", 58)],
)
def test_odd_but_harmless_pull_values_are_stored_safely(
    tmp_path: Path, server: FakeGitHub, change: dict[str, Any], column: str, stored: Any
) -> None:
    from test_ingest import query

    page = served_page(server, f"/repos/{REPO}/pulls", 100, state="closed", sort="updated", direction="desc")
    assert page[0]["number"] == 58
    page[0] = {**page[0], **change}
    server.inject(rf"^/repos/{REPO}/pulls$", status=200, body=page, times=9)
    assert run_ingest(tmp_path, server.url).status == "ok"
    assert query(tmp_path, f"SELECT {column} FROM pull_requests WHERE number = 58") == [(stored,)]


def test_graphql_naming_a_hostile_repository_stays_data(tmp_path: Path, server: FakeGitHub) -> None:
    body = {"data": {"repository": {"pr49": {"number": 49, "closingIssuesReferences": {"nodes": [
        {"number": 48, "repository": {"nameWithOwner": "../../etc/passwd"}}]}}}}}  # fmt: skip
    server.inject(r"^/graphql$", status=200, body=body, times=9)
    from test_ingest import query

    result = run_ingest(tmp_path, server.url)
    assert result.status == "ok"
    assert sorted(p.name for p in (tmp_path / "mirrors").iterdir()) == ["acme__textkit.git"]
    assert query(tmp_path, "SELECT count(*) FROM pr_issue_links WHERE issue_repo LIKE '%..%'") == [(0,)]


# -- the token over an HTTP remote served by a test server --------------------------------------------


class _GitFiles(SimpleHTTPRequestHandler):
    """Serves a bare repository over git's "dumb" HTTP protocol and records Authorization headers."""

    seen: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.headers.get("Authorization") or "")
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


@pytest.fixture
def http_remote(sample_world: SampleWorld, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """``http://127.0.0.1:PORT/textkit.git``: a copy of acme/textkit, plus the Authorization headers it saw."""
    bare = tmp_path / "served" / "textkit.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(sample_world.repos[REPO].bare_path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    seen: list[str] = []
    handler = type("Handler", (_GitFiles,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(bare.parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/textkit.git", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_token_reaches_git_only_in_flight_never_in_the_mirror(
    tmp_path: Path, server: FakeGitHub, sample_world: SampleWorld, http_remote: tuple[str, list[str]]
) -> None:
    url, seen = http_remote
    server.inject(rf"^/repos/{REPO}$", status=200, body=repo_answer(server, sample_world, clone_url=url), times=9)
    result = run_ingest(tmp_path, server.url, **{"github.local_clones": False})
    assert result.status == "ok" and result.prs_new > 0
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert f"Basic {basic}" in seen, "git was handed the token for the API's own host"
    mirror = tmp_path / "mirrors" / "acme__textkit.git"
    forms = (TOKEN.encode(), basic.encode(), basic[:-2].encode())
    for path in [*mirror.rglob("*"), *tmp_path.glob("swerl.duckdb*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(form in data for form in forms), f"the token is stored in {path}"
    config = subprocess.run(["git", "-C", str(mirror), "config", "--list", "--local"], capture_output=True, text=True)
    assert "extraheader" not in config.stdout.lower() and "authorization" not in config.stdout.lower()
    assert json.dumps(config.stdout).count(url) == 1


EDITED_AT = "2026-12-01T09:00:00Z"  # after everything in the sample world, its later batches included


def ingest_while_page_2_is_held(
    home: Path, fake: FakeGitHub, path_regex: str, change: Callable[[], object], per_page: int
) -> None:
    """One ingest into ``home`` that gets page 1 of ``path_regex`` as is and page 2 only after ``change`` ran."""
    fake.inject(path_regex, kind="delay", delay_s=0, times=1)
    held = fake.inject(path_regex, kind="delay", delay_s=1.5, times=1)

    def change_world() -> None:
        while held.times > 0:
            threading.Event().wait(0.01)
        change()

    changer = threading.Thread(target=change_world, daemon=True)
    changer.start()
    result = run_ingest(home, fake.url, **{"github.per_page": per_page})
    changer.join()
    assert result.status == "ok"


def assert_rerun_equals_a_fresh_run(tmp_path: Path, fake: FakeGitHub, per_page: int) -> None:
    """A rerun into ``tmp_path/home`` stores exactly what one run into an empty ``tmp_path/fresh`` stores."""
    for home in (tmp_path / "home", tmp_path / "fresh"):
        assert run_ingest(home, fake.url, **{"github.per_page": per_page}).status == "ok"
    assert_same_data(contents(tmp_path / "home"), contents(tmp_path / "fresh"))


@pytest.mark.slow
def test_pull_listing_that_changes_between_pages_converges_after_a_rerun(
    tmp_path: Path, sample_world: SampleWorld
) -> None:
    """New pull requests land while page 2 is being served: the pages shift, the rerun catches up."""
    world = sample_world.copy_to(tmp_path / "world")
    with FakeGitHub(world, token=TOKEN) as fake:
        ingest_while_page_2_is_held(tmp_path / "home", fake, rf"^/repos/{REPO}/pulls$", world.advance, 20)
        assert_rerun_equals_a_fresh_run(tmp_path, fake, 20)


@pytest.mark.slow
def test_issue_edited_while_the_issue_listing_runs_loses_no_issue(tmp_path: Path, sample_world: SampleWorld) -> None:
    """An issue of page 1 is edited while page 2 is held: it moves to the end of the ``sort=updated`` listing and
    every later item one place toward the start; the issue that crossed the page boundary must still be stored."""
    world = sample_world.copy_to(tmp_path / "world")
    repo, per_page = world.repos[REPO], 40
    listed = sorted([*repo.issues.values(), *repo.pulls.values()], key=lambda i: (i.updated_at, i.number))
    edited, crossing = listed[0].number, listed[per_page].number
    assert edited in repo.issues and crossing == 43  # an issue no PR links: only the listing brings it
    with FakeGitHub(world, token=TOKEN) as fake:
        edit = partial(world.edit_issue, REPO, edited, "Edited while the listing ran.", EDITED_AT)
        ingest_while_page_2_is_held(tmp_path / "home", fake, rf"^/repos/{REPO}/issues$", edit, per_page)
        stored = query(tmp_path / "home", "SELECT number FROM issues WHERE repo = ? AND number = ?", [REPO, crossing])
        assert stored == [(crossing,)], f"issue #{crossing} crossed the page boundary and was skipped"
        assert_rerun_equals_a_fresh_run(tmp_path, fake, per_page)


@pytest.mark.slow
def test_comment_edited_while_the_comment_listing_runs_loses_no_comment(
    tmp_path: Path, sample_world: SampleWorld
) -> None:
    """The repo-wide comment listing under the same shift: a page-1 comment is edited while page 2 is held."""
    world = sample_world.copy_to(tmp_path / "world")
    repo, per_page = world.repos[REPO], 11
    listed = sorted(repo.comments, key=lambda c: (c.updated_at, c.id))
    edited, crossing = listed[0].id, listed[per_page]
    assert crossing.issue_number in repo.pulls  # a PR's comment: no linked-issue gap filling fetches it
    with FakeGitHub(world, token=TOKEN) as fake:
        edit = partial(world.edit_comment, REPO, edited, "Edited while the listing ran.", EDITED_AT)
        ingest_while_page_2_is_held(tmp_path / "home", fake, rf"^/repos/{REPO}/issues/comments$", edit, per_page)
        sql = "SELECT id FROM issue_comments WHERE repo = ? AND id = ?"
        stored = query(tmp_path / "home", sql, [REPO, crossing.id])
        assert stored == [(crossing.id,)], f"comment {crossing.id} crossed the page boundary and was skipped"
        assert_rerun_equals_a_fresh_run(tmp_path, fake, per_page)


@pytest.mark.parametrize(
    ("listing", "params", "next_url"),
    [
        (f"/repos/{REPO}/pulls", {"state": "closed"}, "same"),  # a next link back to itself
        (f"/repos/{REPO}/pulls", {"state": "closed"}, "onward"),  # ever new page numbers, the same items
        (f"/repos/{REPO}/issues", {"state": "all", "sort": "updated", "direction": "asc"}, "onward"),
        (f"/repos/{REPO}/issues/comments", {"sort": "updated", "direction": "asc"}, "onward"),
    ],
)
def test_listing_that_never_ends_stops_with_one_line(
    tmp_path: Path, server: FakeGitHub, listing: str, params: dict[str, str], next_url: str
) -> None:
    """A server that keeps naming a next page of items already served: a clear error, not an endless ingest."""
    page = served_page(server, listing, **params)
    assert page, "the listing must have items to repeat"
    pages = iter(range(2, 10_000))

    def link() -> dict[str, str]:
        target = f"{server.url}{listing}" + ("" if next_url == "same" else f"?page={next(pages)}")
        return {"Link": f'<{target}>; rel="next"'}

    for _ in range(40):  # each answer carries its own Link header
        server.inject(rf"^{listing}$", status=200, body=page, headers=link(), times=1)
    with pytest.raises(IngestError) as failure:
        run_ingest(tmp_path, server.url, **{"github.per_page": 5})
    assert "\n" not in str(failure.value)
    assert "never ends" in str(failure.value) or "already read" in str(failure.value), str(failure.value)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_implausible_update_time_is_refused_and_moves_no_watermark(
    tmp_path: Path, server: FakeGitHub, stamp: str
) -> None:
    """A year-1 date would break the listing's arithmetic; a year-9999 one would freeze its watermark there."""
    params = {"state": "all", "sort": "updated", "direction": "asc"}
    page = served_page(server, f"/repos/{REPO}/issues", **params)
    page[0] = {**page[0], "updated_at": stamp}
    server.inject(rf"^/repos/{REPO}/issues$", status=200, body=page, times=9)
    with pytest.raises(IngestError, match="implausible updated_at") as failure:
        run_ingest(tmp_path, server.url, **{"github.per_page": 5})
    assert "\n" not in str(failure.value)
    if (tmp_path / "swerl.duckdb").exists():  # the store may hold the repository row, never a watermark past now
        assert query(tmp_path, "SELECT value FROM watermarks WHERE stream = 'issues' AND value > now()") == []
