"""The fake GitHub server, exercised through PyGithub (and raw HTTP where PyGithub hides the wire)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from github import Auth, BadCredentialsException, Github, GithubException, GithubRetry, RateLimitExceededException

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.synthetic import build_synthetic_repo
from swerl_core.demo.world import ADA, CommitSpec, PullSpec, Rename, RepoData, SampleWorld, Write, run_git

TOKEN = "ghp_fakeGitHubTestToken0123456789"
TEXTKIT = "acme/textkit"
CLOSING_QUERY = """
query($owner: String!, $name: String!) {
  repository(owner: $owner, name: $name) {
    p16: pullRequest(number: 16) { number closingIssuesReferences(first: 10) { nodes { number } } }
    p18: pullRequest(number: 18) { number closingIssuesReferences(first: 10) { nodes { number } } }
    p20: pullRequest(number: 20) { number closingIssuesReferences(first: 10) {
      totalCount nodes { number repository { nameWithOwner } } } }
    p35: pullRequest(number: 35) { number closingIssuesReferences(first: 10) { nodes { number } } }
    p39: pullRequest(number: 39) { number closingIssuesReferences(first: 10) {
      nodes { number repository { nameWithOwner } } } }
    p49: pullRequest(number: 49) { number closingIssuesReferences(first: 10) { nodes { number } } }
  }
}"""


@pytest.fixture(scope="session")
def world(sample_world: SampleWorld) -> SampleWorld:
    """The shared sample world (read-only here)."""
    return sample_world


@pytest.fixture
def server(world: SampleWorld) -> Iterator[FakeGitHub]:
    """A fresh server (budgets, faults, log) over the pristine sample world."""
    with FakeGitHub(world, token=TOKEN) as fake:
        yield fake


def client(server: FakeGitHub, token: str | None = TOKEN, **kwargs: Any) -> Github:
    """PyGithub pointed at the server, with no throttle and no retries unless asked."""
    kwargs.setdefault("retry", None)
    auth = Auth.Token(token) if token else None
    return Github(base_url=server.url, auth=auth, seconds_between_requests=0, timeout=5, **kwargs)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies whatever the environment says, and redirects left for the test to see.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def raw(
    server: FakeGitHub,
    path: str,
    token: str | None = TOKEN,
    accept: str = "application/vnd.github+json",
    body: bytes | None = None,
    scheme: str = "token",
    timeout: float = 5,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request without PyGithub: status, headers, body."""
    headers = {"Accept": accept, **({"Authorization": f"{scheme} {token}"} if token else {})}
    request = urllib.request.Request(server.url + path, data=body, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# -- repositories, pagination -------------------------------------------------------------------------


def test_repository_reports_a_clone_url_git_can_use(server: FakeGitHub, world: SampleWorld) -> None:
    repo = client(server).get_repo(TEXTKIT)
    assert (repo.full_name, repo.default_branch, repo.id) == (TEXTKIT, "main", world.repo(TEXTKIT).id)
    head = run_git(Path(repo.clone_url), "rev-parse", "refs/pull/2/head").decode().strip()
    assert head == world.repo(TEXTKIT).pulls[2].head_sha


def test_repository_by_id_and_the_authenticated_user(server: FakeGitHub, world: SampleWorld) -> None:
    status, _, body = raw(server, f"/repositories/{world.repo('other/lib').id}")
    assert status == 200 and json.loads(body)["full_name"] == "other/lib"
    assert client(server).get_user().login == "swerl-bot"


def test_pull_list_follows_link_headers_page_by_page(server: FakeGitHub) -> None:
    gh = client(server, per_page=7)
    numbers = [p.number for p in gh.get_repo(TEXTKIT).get_pulls(state="all", sort="created", direction="asc")]
    assert numbers == sorted(numbers) and len(numbers) == 34
    pages = [r for r in server.requests if r.path.endswith("/pulls")]
    assert len(pages) == 5 and "page=5" in pages[-1].query
    _, headers, _ = raw(server, f"/repos/{TEXTKIT}/pulls?state=all&per_page=7&page=2")
    assert 'rel="next"' in headers["Link"] and 'rel="last"' in headers["Link"] and "page=5" in headers["Link"]


def test_pull_list_filters_by_state_and_sorts_by_update(server: FakeGitHub) -> None:
    repo = client(server, per_page=100).get_repo(TEXTKIT)
    assert {p.number for p in repo.get_pulls(state="open")} == {44, 60}
    closed = list(repo.get_pulls(state="closed", sort="updated", direction="desc"))
    stamps = [p.updated_at for p in closed]
    assert stamps == sorted(stamps, reverse=True) and 45 in {p.number for p in closed}


def test_invalid_list_parameters_answer_422(server: FakeGitHub) -> None:
    status, _, body = raw(server, f"/repos/{TEXTKIT}/pulls?state=merged")
    assert status == 422 and json.loads(body)["message"] == "Validation Failed"


@pytest.mark.slow
def test_large_repository_pages_are_full_disjoint_and_cover_every_pull_request(tmp_path: Path) -> None:
    # The speed of this path is measured by benchmarks/ingest.py; here only what each page holds.
    repo = build_synthetic_repo(tmp_path, "bench/big", n_prs=2000, n_issues=1500)
    seen: list[int] = []
    with FakeGitHub([repo], token=TOKEN) as fake:
        for page in range(1, 21):
            status, _, body = raw(fake, f"/repos/bench/big/pulls?state=all&per_page=100&page={page}")
            numbers = [pull["number"] for pull in json.loads(body)]
            assert status == 200 and len(numbers) == 100, f"page {page}: {len(numbers)} pull requests"
            seen.extend(numbers)
        status, _, body = raw(fake, "/repos/bench/big/pulls?state=all&per_page=100&page=21")
    assert status == 200 and json.loads(body) == []
    assert sorted(seen) == sorted(repo.pulls), "pages overlap or skip pull requests"


def test_concurrent_requests_are_all_answered(server: FakeGitHub) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: raw(server, f"/repos/{TEXTKIT}/pulls/{n}")[0], [2, 4, 6, 7, 9, 11] * 4))
    assert answers == [200] * 24 and server.request_count == 24


def test_stop_closes_connections_and_frees_the_port(world: SampleWorld) -> None:
    fake = FakeGitHub(world, token=TOKEN).start()
    client(fake).get_repo(TEXTKIT)  # leaves a keep-alive connection open
    port = int(fake.url.rsplit(":", 1)[1])
    fake.stop()
    assert not [t for t in threading.enumerate() if t.name == "fake-github"]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


# -- pull requests ------------------------------------------------------------------------------------


def test_merged_pull_request_has_merge_fields_and_sizes(server: FakeGitHub, world: SampleWorld) -> None:
    pull = client(server).get_repo(TEXTKIT).get_pull(2)
    record = world.repo(TEXTKIT).pulls[2]
    assert (pull.merged, pull.merge_commit_sha, pull.merged_by.login) == (True, record.merge_commit_sha, "ada-p")
    assert (pull.head.sha, pull.base.sha, pull.head.ref, pull.base.ref) == (
        record.head_sha,
        record.base_sha,
        "fix-slug-edges",
        "main",
    )
    assert (pull.additions, pull.deletions, pull.changed_files, pull.commits) == (5, 1, 2, 1)
    assert pull.merged_at.isoformat() == "2025-01-10T11:00:00+00:00"


def test_draft_closed_and_open_pull_requests(server: FakeGitHub) -> None:
    repo = client(server).get_repo(TEXTKIT)
    draft, closed, open_ = repo.get_pull(44), repo.get_pull(45), repo.get_pull(60)
    assert (draft.draft, draft.state, draft.merged) == (True, "open", False)
    assert (closed.state, closed.merged, closed.merged_at, closed.merge_commit_sha) == ("closed", False, None, None)
    assert (open_.state, open_.body, open_.merge_commit_sha is not None) == ("open", None, True)


def test_fork_and_deleted_fork_heads(server: FakeGitHub) -> None:
    _, _, fork = raw(server, f"/repos/{TEXTKIT}/pulls/27")
    _, _, gone = raw(server, f"/repos/{TEXTKIT}/pulls/54")
    assert json.loads(fork)["head"]["repo"]["full_name"] == "mallory-dev/textkit"
    assert json.loads(fork)["head"]["label"] == "mallory-dev:fix-vowel-y"
    assert json.loads(gone)["head"]["repo"] is None


def test_bot_author_is_typed_bot(server: FakeGitHub) -> None:
    user = client(server).get_repo(TEXTKIT).get_pull(7).user
    assert (user.login, user.type) == ("dependabot[bot]", "Bot")


def test_diff_media_type_returns_git_unified_diff(server: FakeGitHub) -> None:
    status, headers, body = raw(server, f"/repos/{TEXTKIT}/pulls/2", accept="application/vnd.github.v3.diff")
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.github.v3.diff")
    assert body.startswith(b"diff --git a/src/textkit/slug.py b/src/textkit/slug.py\n")
    assert b"+    return _NON_ALNUM.sub(sep, folded.lower()).strip(sep)\n" in body
    _, _, patch = raw(server, f"/repos/{TEXTKIT}/pulls/2", accept="application/vnd.github.patch")
    assert patch.startswith(b"From ") and b"Subject: [PATCH] Strip separators" in patch


def test_diff_url_in_the_json_serves_the_same_diff(server: FakeGitHub) -> None:
    _, _, body = raw(server, f"/repos/{TEXTKIT}/pulls/9")
    diff_path = json.loads(body)["diff_url"].removeprefix(server.url)
    assert (
        raw(server, diff_path)[2]
        == raw(server, f"/repos/{TEXTKIT}/pulls/9", accept="application/vnd.github.v3.diff")[2]
    )


def test_diff_with_too_many_files_answers_406(world: SampleWorld) -> None:
    with FakeGitHub(world, token=TOKEN, max_diff_files=3) as fake:
        status, _, body = raw(fake, f"/repos/{TEXTKIT}/pulls/28", accept="application/vnd.github.v3.diff")
        assert raw(fake, f"/repos/{TEXTKIT}/pulls/28/files")[0] == 200
    assert status == 406 and json.loads(body)["errors"][0]["code"] == "too_large"


def test_pull_whose_head_left_git_still_has_a_diff_and_files(server: FakeGitHub) -> None:
    _, _, diff = raw(server, f"/repos/{TEXTKIT}/pulls/52", accept="application/vnd.github.v3.diff")
    files = [f.filename for f in client(server).get_repo(TEXTKIT).get_pull(52).get_files()]
    assert b"_APOSTROPHES" in diff
    assert files == ["src/textkit/case.py", "tests/test_case.py"]


def test_files_report_renames_binaries_deletions_and_latin1(server: FakeGitHub) -> None:
    repo = client(server).get_repo(TEXTKIT)
    renamed = {f.filename: f for f in repo.get_pull(28).get_files()}
    assert renamed["src/textkit/delimited.py"].status == "renamed"
    assert renamed["src/textkit/delimited.py"].previous_filename == "src/textkit/csvish.py"
    logo = next(f for f in repo.get_pull(33).get_files() if f.filename == "docs/logo.png")
    assert (logo.status, logo.patch) == ("added", None)
    assert {f.status for f in repo.get_pull(25).get_files() if "legacy" in f.filename} == {"removed"}
    accents = next(f for f in repo.get_pull(30).get_files() if f.filename.endswith("accents.py"))
    assert '+    "É": "E"' in accents.patch.replace('"È": "E", ', "")


def test_files_of_a_pull_request_whose_headers_git_quoted_keep_their_names(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    ops = (Write('src/textkit/say "hi".py', "HI = 1\n"), Rename("README.md", 'READ "ME".md'))
    commit = CommitSpec("Quoted names", "2026-12-01T09:00:00Z", ops)
    pull = PullSpec(
        70, "Quoted names", None, ADA, "2026-12-01T10:00:00Z", "quoted", (commit,), closed_at="2026-12-02T10:00:00Z"
    )
    copy.add_pull(TEXTKIT, pull)
    with FakeGitHub(copy, token=TOKEN) as fake:
        _, _, diff = raw(fake, f"/repos/{TEXTKIT}/pulls/70", accept="application/vnd.github.v3.diff")
        files = {f.filename: f for f in client(fake).get_repo(TEXTKIT).get_pull(70).get_files()}
    assert b'diff --git "a/src/textkit/say \\"hi\\".py"' in diff, "git should quote the header"
    assert sorted(files) == ['READ "ME".md', 'src/textkit/say "hi".py']
    assert (files['READ "ME".md'].status, files['READ "ME".md'].previous_filename) == ("renamed", "README.md")
    assert files['src/textkit/say "hi".py'].status == "added"


def test_pull_commits_chain_from_the_base(server: FakeGitHub, world: SampleWorld) -> None:
    commits = list(client(server).get_repo(TEXTKIT).get_pull(6).get_commits())
    record = world.repo(TEXTKIT).pulls[6]
    assert [c.sha for c in commits] == [c.sha for c in record.commits]
    assert commits[0].parents[0].sha == record.base_sha and commits[1].parents[0].sha == commits[0].sha
    assert commits[0].commit.message == "Add failing test for 11th-13th"


# -- issues and comments ------------------------------------------------------------------------------


def test_issue_list_includes_pull_requests_marked_as_such(server: FakeGitHub) -> None:
    items = list(client(server, per_page=100).get_repo(TEXTKIT).get_issues(state="all"))
    pulls = {i.number for i in items if i.pull_request is not None}
    assert len(items) == 58 and len(pulls) == 34
    assert 36 not in {i.number for i in items} and 38 not in {i.number for i in items}


def test_issue_list_since_returns_only_recent_updates(server: FakeGitHub) -> None:
    from datetime import UTC, datetime

    since = datetime(2026, 9, 1, tzinfo=UTC)
    items = list(client(server).get_repo(TEXTKIT).get_issues(state="all", since=since, sort="updated", direction="asc"))
    assert items and all(i.updated_at >= since for i in items)
    assert [i.updated_at for i in items] == sorted(i.updated_at for i in items)


def test_deleted_issue_answers_410_and_unknown_404(server: FakeGitHub) -> None:
    repo = client(server).get_repo(TEXTKIT)
    with pytest.raises(GithubException) as gone:
        repo.get_issue(36)
    assert gone.value.status == 410
    assert raw(server, f"/repos/{TEXTKIT}/issues/999")[0] == 404


def test_transferred_issue_redirects_to_its_new_home(server: FakeGitHub, world: SampleWorld) -> None:
    status, headers, _ = raw(server, f"/repos/{TEXTKIT}/issues/38")
    assert status == 301 and headers["Location"].endswith(f"/repositories/{world.repo('other/lib').id}/issues/5")
    issue = client(server).get_repo(TEXTKIT).get_issue(38)
    assert (issue.number, issue.title) == (5, "Strip a UTF-8 BOM before parsing")


def test_issue_comments_and_repo_wide_comments(server: FakeGitHub) -> None:
    from datetime import UTC, datetime

    repo = client(server).get_repo(TEXTKIT)
    thread = list(repo.get_issue(8).get_comments())
    assert [c.user.login for c in thread] == ["ada-p", "ghost"]
    recent = list(repo.get_issues_comments(sort="updated", direction="asc", since=datetime(2026, 1, 1, tzinfo=UTC)))
    assert recent and all(c.updated_at.year == 2026 for c in recent)
    assert len(list(repo.get_issues_comments())) == 19


# -- names, visibility, auth --------------------------------------------------------------------------


def test_renamed_repository_old_name_answers_301(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    copy.rename_repo(TEXTKIT, "acme/textkit-ng")
    with FakeGitHub(copy, token=TOKEN) as fake:
        repo = client(fake).get_repo(TEXTKIT)
        status, headers, _ = raw(fake, f"/repos/{TEXTKIT}/pulls?state=all")
    assert repo.full_name == "acme/textkit-ng"
    assert status == 301 and headers["Location"].endswith(f"/repositories/{repo.id}/pulls?state=all")


def test_hidden_and_unknown_repositories_answer_404(server: FakeGitHub) -> None:
    server.hide_repo("other/lib")
    for name in ("other/lib", "nobody/nothing"):
        status, _, body = raw(server, f"/repos/{name}")
        assert (status, json.loads(body)["message"]) == (404, "Not Found")


def test_wrong_token_answers_401_bad_credentials(server: FakeGitHub) -> None:
    with pytest.raises(BadCredentialsException):
        client(server, token="ghp_wrong").get_repo(TEXTKIT)
    status, _, body = raw(server, f"/repos/{TEXTKIT}", token="ghp_wrong")
    assert (status, json.loads(body)["message"]) == (401, "Bad credentials")


def test_bearer_scheme_and_anonymous_callers(server: FakeGitHub) -> None:
    assert raw(server, f"/repos/{TEXTKIT}", scheme="Bearer")[1]["X-RateLimit-Limit"] == "5000"
    status, headers, _ = raw(server, f"/repos/{TEXTKIT}", token=None)
    assert (status, headers["X-RateLimit-Limit"]) == (200, "60")
    assert raw(server, "/user", token=None)[0] == 401


def test_the_token_is_never_logged_or_kept(server: FakeGitHub) -> None:
    client(server).get_repo(TEXTKIT).get_pull(2)
    raw(server, f"/repos/{TEXTKIT}?access_note=x", token="ghp_wrong")
    assert TOKEN not in repr(server.requests) and TOKEN not in repr(vars(server))
    assert [(r.method, r.path, r.status) for r in server.requests] == [
        ("GET", f"/repos/{TEXTKIT}", 200),
        ("GET", f"/repos/{TEXTKIT}/pulls/2", 200),
        ("GET", f"/repos/{TEXTKIT}", 401),
    ]
    server.reset_counts()
    assert server.request_count == 0


# -- rate limits ---------------------------------------------------------------------------------------


def test_every_response_carries_a_decreasing_budget(server: FakeGitHub) -> None:
    remaining = [int(raw(server, f"/repos/{TEXTKIT}/issues/1")[1]["X-RateLimit-Remaining"]) for _ in range(3)]
    _, headers, body = raw(server, "/rate_limit")
    assert remaining == [4999, 4998, 4997]
    assert headers["X-RateLimit-Resource"] == "core" and int(headers["X-RateLimit-Reset"]) > time.time()
    assert json.loads(body)["resources"]["core"]["remaining"] == 4997  # /rate_limit itself is free


def test_exhausted_budget_answers_403_until_reset(world: SampleWorld) -> None:
    with FakeGitHub(world, token=TOKEN, rate_limit=2) as fake:
        gh = client(fake)
        gh.get_repo(TEXTKIT)
        gh.get_repo("other/lib")
        with pytest.raises(RateLimitExceededException) as exceeded:
            gh.get_repo(TEXTKIT)
    assert exceeded.value.status == 403
    assert exceeded.value.headers["x-ratelimit-remaining"] == "0"
    assert exceeded.value.data["message"].startswith("API rate limit exceeded")


def test_pygithub_waits_for_the_reset_and_carries_on(server: FakeGitHub) -> None:
    server.exhaust_rate_limit(reset_in_s=0.5)
    started = time.monotonic()
    repo = client(server, retry=GithubRetry(total=3)).get_repo(TEXTKIT)
    assert repo.full_name == TEXTKIT and time.monotonic() - started >= 0.4
    assert [r.status for r in server.requests] == [403, 200]


def test_secondary_limit_with_retry_after_is_retried_by_pygithub(server: FakeGitHub) -> None:
    server.inject_secondary_rate_limit(rf"^/repos/{TEXTKIT}$", retry_after=1)
    started = time.monotonic()
    assert client(server, retry=GithubRetry(total=3)).get_repo(TEXTKIT).full_name == TEXTKIT
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in server.requests] == [403, 200]


def test_secondary_limit_message_is_github_s(server: FakeGitHub) -> None:
    server.inject_secondary_rate_limit()
    with pytest.raises(RateLimitExceededException) as limited:
        client(server).get_repo(TEXTKIT)
    assert limited.value.data["message"].startswith("You have exceeded a secondary rate limit")


# -- scripted faults -----------------------------------------------------------------------------------


def test_faults_are_consumed_in_order(server: FakeGitHub) -> None:
    server.inject(r"/pulls$", status=502, times=2)
    server.inject(r"/pulls$", status=503, headers={"Retry-After": "7"})
    statuses = [raw(server, f"/repos/{TEXTKIT}/pulls")[0] for _ in range(4)]
    assert statuses == [502, 502, 503, 200]
    assert raw(server, f"/repos/{TEXTKIT}/issues")[0] == 200


def test_pygithub_retries_through_502s(server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{TEXTKIT}$", status=502, times=2)
    gh = client(server, retry=GithubRetry(total=3))
    assert gh.get_repo(TEXTKIT).full_name == TEXTKIT
    assert [r.status for r in server.requests] == [502, 502, 200]


def test_reset_fault_closes_the_connection_without_an_answer(server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{TEXTKIT}$", kind="reset")
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        raw(server, f"/repos/{TEXTKIT}")
    assert server.requests[-1].status == 0
    assert raw(server, f"/repos/{TEXTKIT}")[0] == 200


def test_delay_fault_makes_clients_time_out(server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{TEXTKIT}$", kind="delay", delay_s=1.0)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        raw(server, f"/repos/{TEXTKIT}", timeout=0.2)


def test_injected_body_replaces_the_answer(server: FakeGitHub) -> None:
    server.inject(rf"^/repos/{TEXTKIT}/pulls$", status=200, body="<html>Unicorn!</html>")
    status, headers, body = raw(server, f"/repos/{TEXTKIT}/pulls")
    assert (status, body) == (200, b"<html>Unicorn!</html>") and "X-RateLimit-Remaining" in headers


# -- GraphQL and live changes ---------------------------------------------------------------------------


def test_graphql_closing_references_of_aliased_pull_requests(server: FakeGitHub) -> None:
    _, data = client(server).requester.graphql_query(CLOSING_QUERY, {"owner": "acme", "name": "textkit"})
    repo = data["data"]["repository"]

    def numbers(alias: str) -> list[int]:
        return [n["number"] for n in repo[alias]["closingIssuesReferences"]["nodes"]]

    assert (numbers("p16"), numbers("p18"), numbers("p35"), numbers("p49")) == ([], [17], [34], [48])
    cross = repo["p20"]["closingIssuesReferences"]
    assert cross["totalCount"] == 2
    assert [(n["number"], n["repository"]["nameWithOwner"]) for n in cross["nodes"]] == [
        (19, "acme/textkit"),
        (3, "other/lib"),
    ]
    assert repo["p39"]["closingIssuesReferences"]["nodes"][0]["repository"]["nameWithOwner"] == "other/lib"


def test_graphql_unknown_pull_request_is_null_with_not_found(server: FakeGitHub) -> None:
    query = (
        'query { repository(owner: "acme", name: "textkit") { a: pullRequest(number: 2) { number } '
        "b: pullRequest(number: 999) { number } } }"
    )
    status, headers, body = raw(server, "/graphql", body=json.dumps({"query": query}).encode())
    answer = json.loads(body)
    assert status == 200 and headers["X-RateLimit-Resource"] == "graphql"
    assert answer["data"]["repository"]["a"]["number"] == 2 and answer["data"]["repository"]["b"] is None
    assert answer["errors"][0]["type"] == "NOT_FOUND"


def test_changes_to_a_served_world_show_up_immediately(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    with FakeGitHub(copy, token=TOKEN) as fake:
        repo = client(fake, per_page=100).get_repo(TEXTKIT)
        before = {p.number for p in repo.get_pulls(state="closed")}
        copy.advance()
        after = {p.number for p in repo.get_pulls(state="closed")}
        issue = repo.get_issue(59)
    assert after - before == {62, 63} and issue.state == "closed"


def test_served_repo_list_reflects_synthetic_extension(tmp_path: Path) -> None:
    repo: RepoData = build_synthetic_repo(tmp_path, "bench/tiny", n_prs=10, n_issues=5)
    from swerl_core.demo.synthetic import extend_synthetic_repo

    with FakeGitHub([repo], token=TOKEN) as fake:
        gh = client(fake, per_page=100)
        first = gh.get_repo("bench/tiny").get_pulls(state="all").totalCount
        extend_synthetic_repo(repo, n_new_prs=3)
        second = gh.get_repo("bench/tiny").get_pulls(state="all").totalCount
    assert (first, second) == (10, 13)
