"""Routing of the GitHub-compatible test server: which path answers what, pagination and query parameters.

:class:`RestApi` turns a :class:`Request` into a :class:`Response` from the served repositories; the server
(:mod:`swerl_core.demo.github_server`) adds authentication, rate limits and faults around it.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from swerl_core.demo.github_resources import DiffCache, RepoIndex, Shapes
from swerl_core.demo.world import (
    Account,
    PullRecord,
    RepoData,
    find_repo,
    parse_issue_ref,
)

DOCS = "https://docs.github.com/rest"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: Message
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(
            status, json.dumps(payload, ensure_ascii=False).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
        )

    @classmethod
    def error(cls, status: int, message: str, **extra: Any) -> Response:
        """A GitHub-shaped error: ``{"message", "documentation_url", "status"}``."""
        return cls.json(status, {"message": message, **extra, "documentation_url": DOCS, "status": str(status)})


# --------------------------------------------------------------------------------------------------
# GraphQL: closingIssuesReferences of many pull requests
# --------------------------------------------------------------------------------------------------

_GQL_REPO = re.compile(r"(?:(\w+)\s*:\s*)?repository\s*\(([^)]*)\)")
_GQL_PULL = re.compile(r"(?:(\w+)\s*:\s*)?pullRequest\s*\(([^)]*)\)")
_GQL_CLOSING = re.compile(r"closingIssuesReferences\s*(?:\(([^)]*)\))?")
_GQL_ARG = re.compile(r'(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|\$\w+|-?\d+|true|false|null)')


def _gql_args(text: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in _GQL_ARG.findall(text):
        out[name] = variables.get(raw[1:]) if raw.startswith("$") else json.loads(raw)
    return out


def _segments(pattern: re.Pattern[str], text: str) -> list[tuple[re.Match[str], str]]:
    matches = list(pattern.finditer(text))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [(m, text[m.end() : end]) for m, end in zip(matches, ends, strict=True)]


# --------------------------------------------------------------------------------------------------
# the REST and GraphQL endpoints
# --------------------------------------------------------------------------------------------------

_REPO_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^$"), "_get_repo"),
    (re.compile(r"^/pulls$"), "_list_pulls"),
    (re.compile(r"^/pulls/(\d+)$"), "_get_pull"),
    (re.compile(r"^/pulls/(\d+)/commits$"), "_pull_commits"),
    (re.compile(r"^/pulls/(\d+)/files$"), "_pull_files"),
    (re.compile(r"^/issues$"), "_list_issues"),
    (re.compile(r"^/issues/comments$"), "_repo_comments"),
    (re.compile(r"^/issues/comments/(\d+)$"), "_get_comment"),
    (re.compile(r"^/issues/(\d+)$"), "_get_issue"),
    (re.compile(r"^/issues/(\d+)/comments$"), "_issue_comments"),
]
_REPOS_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)(/.*)?$")
_REPO_ID_PATH = re.compile(r"^/repositories/(\d+)(/.*)?$")
_HTML_DIFF_PATH = re.compile(r"^/([^/]+)/([^/]+)/pull/(\d+)\.(diff|patch)$")
_TEXT_MEDIA = re.compile(r"application/vnd\.github(?:\.v3)?\.(diff|patch)")


class RestApi:
    """Routes authenticated, rate-limited requests to GitHub's endpoints over the served repositories."""

    def __init__(
        self, repos: Callable[[], list[RepoData]], url: str, viewer: Account, max_diff_files: int, hidden: set[str]
    ) -> None:
        self.repos, self.url, self.viewer = repos, url, viewer
        self.max_diff_files, self.hidden = max_diff_files, hidden
        self.shapes = Shapes(url)
        self.diffs = DiffCache()
        self._indexes: dict[int, RepoIndex] = {}
        self._lock = threading.Lock()

    def route(self, request: Request, identity: str) -> Response:
        """Answer a request that passed auth and the rate limit."""
        path = request.path
        if request.method == "POST" and path == "/graphql":
            return self._graphql(request)
        if request.method != "GET":
            return Response.error(404, "Not Found")
        if path == "/user":
            if identity == "anonymous":
                return Response.error(401, "Requires authentication")
            return Response.json(200, {**(self.shapes.user(self.viewer) or {}), "name": self.viewer.name})
        if m := _REPO_ID_PATH.match(path):
            repo = self._visible(next((r for r in self.repos() if r.id == int(m.group(1))), None))
            return self._repo_route(request, repo, m.group(2) or "")
        if m := _REPOS_PATH.match(path):
            return self._named_repo_route(request, f"{m.group(1)}/{m.group(2)}", m.group(3) or "")
        if m := _HTML_DIFF_PATH.match(path):
            repo = self._visible(find_repo(self.repos(), f"{m.group(1)}/{m.group(2)}"))
            if repo is None:
                return Response.error(404, "Not Found")
            return self._pull_text(repo, int(m.group(3)), m.group(4))
        return Response.error(404, "Not Found")

    def _visible(self, repo: RepoData | None) -> RepoData | None:
        return None if repo is None or repo.full_name.lower() in self.hidden else repo

    def _index(self, repo: RepoData) -> RepoIndex:
        with self._lock:
            index = self._indexes.get(repo.id)
            if index is None or index.version != repo.version or index.repo is not repo:
                index = self._indexes[repo.id] = RepoIndex(repo, self.shapes)
            return index

    def _moved(self, location: str) -> Response:
        body = {"message": "Moved Permanently", "url": location, "documentation_url": DOCS}
        return Response.json(301, body, {"Location": location})

    def _named_repo_route(self, request: Request, full_name: str, rest: str) -> Response:
        repo = self._visible(find_repo(self.repos(), full_name))
        if repo is not None and repo.full_name.lower() != full_name.lower():
            query = f"?{request.raw_query}" if request.raw_query else ""
            return self._moved(f"{self.url}/repositories/{repo.id}{rest}{query}")
        return self._repo_route(request, repo, rest)

    def _repo_route(self, request: Request, repo: RepoData | None, rest: str) -> Response:
        if repo is None:
            return Response.error(404, "Not Found")
        for pattern, name in _REPO_ROUTES:
            if m := pattern.match(rest):
                handler = getattr(self, name)
                return handler(request, repo, self._index(repo), *(int(g) for g in m.groups()))
        return Response.error(404, "Not Found")

    # pagination ---------------------------------------------------------------------------------

    def _page_bounds(self, request: Request, total: int) -> tuple[slice, str]:
        per_page = min(max(_int(request.query.get("per_page"), 30), 1), 100)
        page = max(_int(request.query.get("page"), 1), 1)
        last = max(1, -(-total // per_page))
        return slice((page - 1) * per_page, page * per_page), self._links(request, page, last)

    def _links(self, request: Request, page: int, last: int) -> str:
        def url(n: int) -> str:
            query = {**request.query, "page": str(n)}
            return f"<{self.url}{request.path}?{urllib.parse.urlencode(query)}>"

        rels = []
        if page < last:
            rels += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            rels += [f'{url(1)}; rel="first"', f'{url(min(page - 1, last))}; rel="prev"']
        return ", ".join(rels)

    def _page(self, request: Request, index: RepoIndex, kind: str, keys: Sequence[int]) -> Response:
        window, links = self._page_bounds(request, len(keys))
        body = b"[" + b",".join(index.item(kind, k) for k in keys[window]) + b"]"
        return Response(200, body, {"Content-Type": JSON_TYPE, **({"Link": links} if links else {})})

    def _static_page(self, request: Request, items: Sequence[dict[str, Any]]) -> Response:
        window, links = self._page_bounds(request, len(items))
        return Response.json(200, list(items[window]), {"Link": links} if links else {})

    # repositories and pull requests -------------------------------------------------------------

    def _get_repo(self, request: Request, repo: RepoData, index: RepoIndex) -> Response:
        return Response.json(200, self.shapes.repo(repo, full=True))

    def _list_pulls(self, request: Request, repo: RepoData, index: RepoIndex) -> Response:
        q = request.query
        state = _choice(q, "state", "open", ("open", "closed", "all"))
        sort = _choice(q, "sort", "created", ("created", "updated"))
        direction = _choice(q, "direction", "desc" if sort == "created" else "asc", ("asc", "desc"))
        return self._page(request, index, "pull", index.pulls(state, sort, direction == "desc", q.get("base")))

    def _get_pull(self, request: Request, repo: RepoData, index: RepoIndex, number: int) -> Response:
        if media := _TEXT_MEDIA.search(request.headers.get("Accept", "")):
            return self._pull_text(repo, number, media.group(1))
        pull = repo.pulls.get(number)
        if pull is None:
            return Response.error(404, "Not Found")
        stats = self.diffs.get(repo, pull).stats
        return Response.json(200, self.shapes.pull_full(repo, pull, index.comment_counts.get(number, 0), stats))

    def _pull_text(self, repo: RepoData, number: int, kind: str) -> Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return Response.error(404, "Not Found")
        diff = self.diffs.get(repo, pull)
        if len(diff.files) > self.max_diff_files:
            return Response.error(
                406,
                f"Sorry, the diff exceeded the maximum number of files ({self.max_diff_files}). Consider "
                "using 'List pull requests files' API or locally cloning the repository instead.",
                errors=[{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
            )
        text = diff.text if kind == "diff" else self.diffs.patch(repo, pull)
        return Response(200, text, {"Content-Type": f"application/vnd.github.v3.{kind}; charset=utf-8"})

    def _pull_commits(self, request: Request, repo: RepoData, index: RepoIndex, number: int) -> Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return Response.error(404, "Not Found")
        return self._static_page(request, [self.shapes.commit(repo, c) for c in pull.commits])

    def _pull_files(self, request: Request, repo: RepoData, index: RepoIndex, number: int) -> Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return Response.error(404, "Not Found")
        files = self.diffs.get(repo, pull).files
        return self._static_page(request, [self.shapes.file(repo, pull.head_sha, f) for f in files])

    # issues and comments ------------------------------------------------------------------------

    def _list_issues(self, request: Request, repo: RepoData, index: RepoIndex) -> Response:
        q = request.query
        state = _choice(q, "state", "open", ("open", "closed", "all"))
        sort = _choice(q, "sort", "created", ("created", "updated", "comments"))
        direction = _choice(q, "direction", "desc", ("asc", "desc"))
        labels = tuple(sorted(x.strip() for x in q.get("labels", "").split(",") if x.strip()))
        keys = index.issues(state, sort, direction == "desc", _since(q), labels)
        return self._page(request, index, "issue", keys)

    def _missing_issue(self, repo: RepoData, number: int, rest: str) -> Response | None:
        """410 for a deleted issue, 301 for a transferred one, 404 for none; ``None`` when it exists."""
        if number in repo.deleted_issues:
            return Response.error(410, "This issue was deleted")
        if number in repo.moved_issues:
            name, new_number = parse_issue_ref(repo.moved_issues[number])
            target = find_repo(self.repos(), name)
            if target is not None:
                return self._moved(f"{self.url}/repositories/{target.id}/issues/{new_number}{rest}")
        if number not in repo.issues and number not in repo.pulls:
            return Response.error(404, "Not Found")
        return None

    def _get_issue(self, request: Request, repo: RepoData, index: RepoIndex, number: int) -> Response:
        missing = self._missing_issue(repo, number, "")
        return missing or Response(200, index.item("issue", number), {"Content-Type": JSON_TYPE})

    def _issue_comments(self, request: Request, repo: RepoData, index: RepoIndex, number: int) -> Response:
        missing = self._missing_issue(repo, number, "/comments")
        keys = index.comments(number, _since(request.query), None, False)
        return missing or self._page(request, index, "comment", keys)

    def _repo_comments(self, request: Request, repo: RepoData, index: RepoIndex) -> Response:
        q = request.query
        sort = _choice(q, "sort", "", ("", "created", "updated")) or None
        direction = _choice(q, "direction", "desc", ("asc", "desc"))
        keys = index.comments(None, _since(q), sort, direction == "desc")
        return self._page(request, index, "comment", keys)

    def _get_comment(self, request: Request, repo: RepoData, index: RepoIndex, comment_id: int) -> Response:
        if comment_id not in index.comments_by_id:
            return Response.error(404, "Not Found")
        return Response(200, index.item("comment", comment_id), {"Content-Type": JSON_TYPE})

    # graphql ------------------------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        try:
            doc = json.loads(request.body or b"null")
            query, variables = doc["query"], doc.get("variables") or {}
        except (ValueError, TypeError, KeyError):
            return Response.error(400, "Problems parsing JSON")
        blocks = _segments(_GQL_REPO, query)
        if not blocks:
            message = "This server only answers repository { pullRequest { closingIssuesReferences } } queries"
            return Response.json(200, {"errors": [{"message": message}]})
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for match, body in blocks:
            key, args = match.group(1) or "repository", _gql_args(match.group(2), variables)
            name = f"{args.get('owner')}/{args.get('name')}"
            repo = self._visible(find_repo(self.repos(), name))
            if repo is None:
                data[key] = None
                errors.append(
                    {
                        "type": "NOT_FOUND",
                        "path": [key],
                        "message": f"Could not resolve to a Repository with the name '{name}'.",
                    }
                )
                continue
            data[key] = self._gql_pulls(repo, body, variables, key, errors)
        return Response.json(200, {"data": data, **({"errors": errors} if errors else {})})

    def _gql_pulls(
        self, repo: RepoData, body: str, variables: Mapping[str, Any], repo_key: str, errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"nameWithOwner": repo.full_name}
        for match, fields in _segments(_GQL_PULL, body):
            key, number = match.group(1) or "pullRequest", _gql_args(match.group(2), variables).get("number")
            pull = repo.pulls.get(number) if isinstance(number, int) else None
            if pull is None:
                out[key] = None
                errors.append(
                    {
                        "type": "NOT_FOUND",
                        "path": [repo_key, key],
                        "message": f"Could not resolve to a PullRequest with the number of {number}.",
                    }
                )
                continue
            out[key] = self.shapes.graphql_pull(repo, pull)
            if closing := _GQL_CLOSING.search(fields):
                first = _gql_args(closing.group(1) or "", variables).get("first") or 100
                out[key]["closingIssuesReferences"] = self._gql_closing(pull, int(first))
        return out

    def _gql_closing(self, pull: PullRecord, first: int) -> dict[str, Any]:
        nodes = []
        for ref in pull.closing_issues:
            name, number = parse_issue_ref(ref)
            target = find_repo(self.repos(), name)
            nodes.append(
                self.shapes.graphql_issue(
                    target.full_name if target else name, number, target.issues.get(number) if target else None
                )
            )
        return {
            "totalCount": len(nodes),
            "nodes": nodes[:first],
            "pageInfo": {"hasNextPage": len(nodes) > first, "endCursor": None},
        }


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _choice(query: Mapping[str, str], name: str, default: str, allowed: Sequence[str]) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(a for a in allowed if a)}, not {value!r}")
    return value


def _since(query: Mapping[str, str]) -> str | None:
    raw = query.get("since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"since must be an ISO 8601 timestamp, not {raw!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
