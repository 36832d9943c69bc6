"""A GitHub-compatible REST v3 server (plus a sliver of GraphQL) on 127.0.0.1, for tests and the demo.

Owns HTTP routing, GitHub's JSON shapes, pagination with RFC 5988 ``Link`` headers, rate-limit
accounting, token auth, scripted faults and a request log. It serves the records of a
:class:`~swerl_core.demo.world.World` (or a list of :class:`~swerl_core.demo.world.RepoData`) and reads
git only to compute pull-request diffs. It never stores or logs the token (only its SHA-256 digest is
kept), never listens beyond 127.0.0.1 and runs on the standard library alone.

Endpoints (GitHub semantics; ``per_page`` ≤ 100, ``page``, stable ordering, numbers break ties):

* ``GET /user``, ``GET /rate_limit`` (free, as on GitHub)
* ``GET /repos/{o}/{r}`` and ``GET /repositories/{id}[/…]``; an old name of a renamed repository
  answers 301 to ``/repositories/{id}/…``
* ``GET /repos/{o}/{r}/pulls`` (``state``, ``sort=created|updated``, ``direction``, ``base``),
  ``/pulls/{n}`` (``Accept: application/vnd.github.v3.diff`` or ``.patch`` gives text; 406 above
  ``max_diff_files`` changed files), ``/pulls/{n}/commits``, ``/pulls/{n}/files``
* ``GET /repos/{o}/{r}/issues`` (pull requests included with a ``pull_request`` key; ``state``,
  ``since``, ``sort=created|updated|comments``, ``direction``, ``labels``), ``/issues/{n}`` (410 deleted,
  301 transferred, 404 unknown), ``/issues/{n}/comments`` (``since``), ``/issues/comments``
  (repo-wide; ``since``, ``sort``, ``direction``), ``/issues/comments/{id}``
* ``GET /{o}/{r}/pull/{n}.diff`` and ``.patch`` at the ``diff_url``/``patch_url`` the JSON reports
* ``POST /graphql`` — see :meth:`FakeGitHub.graphql_shape`.

Every response carries ``X-RateLimit-Limit/Remaining/Reset/Used/Resource``; budgets really decrease
(per identity and resource), and an empty budget answers 403 "API rate limit exceeded" like GitHub.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple

from swerl_core.demo.world import (
    DIFF_ARGS,
    Account,
    CommentRecord,
    CommitRecord,
    DemoError,
    IssueRecord,
    PullRecord,
    RepoData,
    World,
    find_repo,
    parse_issue_ref,
    run_git,
)

__all__ = ["Fault", "FakeGitHub", "RequestRecord"]

DOCS = "https://docs.github.com/rest"
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
    "out to GitHub Support for help, please include the request ID."
)
JSON_TYPE = "application/json; charset=utf-8"
_HEX40 = re.compile(rb"^[0-9a-f]{40}$")


class RequestRecord(NamedTuple):
    """One request as the server saw it: never headers, so never the token. ``status`` 0 = connection reset."""

    method: str
    path: str
    query: str
    status: int


@dataclass
class Fault:
    """A scripted misbehaviour for requests whose path matches ``pattern`` (``re.search``).

    ``kind`` ``status`` answers ``status``/``headers``/``body``; ``reset`` closes the socket without an
    answer; ``delay`` sleeps ``delay_s`` first, then answers ``status`` if given, else normally.
    """

    pattern: re.Pattern[str]
    kind: Literal["status", "reset", "delay"] = "status"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    delay_s: float = 0.0
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        return self.times > 0 and (self.method is None or self.method == method) and bool(self.pattern.search(path))


@dataclass
class _Request:
    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: Message
    body: bytes


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Response:
        """A JSON response."""
        return cls(
            status, json.dumps(payload, ensure_ascii=False).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
        )

    @classmethod
    def error(cls, status: int, message: str, **extra: Any) -> _Response:
        """A GitHub-shaped error: ``{"message", "documentation_url", "status"}``."""
        return cls.json(status, {"message": message, **extra, "documentation_url": DOCS, "status": str(status)})


class _Budget:
    """A GitHub rate-limit window: ``limit`` requests per ``window_s`` seconds, reset all at once."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.used, self.reset_at = 0, time.time() + window_s

    def _roll(self) -> None:
        if time.time() >= self.reset_at:
            self.used, self.reset_at = 0, time.time() + self.window_s

    def take(self) -> bool:
        """Spend one request if any is left."""
        self._roll()
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, resource: str) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers for the current state."""
        self._roll()
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self.used),
            "X-RateLimit-Reset": str(int(self.reset_at)),
            "X-RateLimit-Used": str(self.used),
            "X-RateLimit-Resource": resource,
        }

    def snapshot(self) -> dict[str, int]:
        """The ``/rate_limit`` form of this budget."""
        self._roll()
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.limit - self.used,
            "reset": int(self.reset_at),
        }


# --------------------------------------------------------------------------------------------------
# JSON shapes
# --------------------------------------------------------------------------------------------------


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_" + base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


class _Shapes:
    """Renders records into GitHub's REST JSON, with URLs pointing at this server."""

    def __init__(self, api: str) -> None:
        self.api = api

    def html(self, *parts: object) -> str:
        """An ``html_url`` on this server."""
        return "/".join([self.api, *map(str, parts)])

    def user(self, who: Account | None) -> dict[str, Any] | None:
        """A ``simple-user`` object."""
        if who is None:
            return None
        url = f"{self.api}/users/{who.login}"
        return {
            "login": who.login,
            "id": who.id,
            "node_id": _node_id("U", who.id),
            "avatar_url": f"{self.api}/avatars/{who.id}",
            "gravatar_id": "",
            "url": url,
            "html_url": self.html(who.login),
            "type": who.type,
            "site_admin": False,
            "user_view_type": "public",
            "repos_url": f"{url}/repos",
        }

    def repo(self, repo: RepoData, full: bool = False) -> dict[str, Any]:
        """A repository object (``full`` adds what ``GET /repos/{o}/{r}`` adds to the list form)."""
        url = f"{self.api}/repos/{repo.full_name}"
        open_count = sum(1 for i in repo.issues.values() if i.state == "open") + sum(
            1 for p in repo.pulls.values() if p.state == "open"
        )
        out = {
            "id": repo.id,
            "node_id": _node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "owner": self.user(repo.owner),
            "html_url": self.html(repo.full_name),
            "description": repo.description,
            "fork": False,
            "url": url,
            "pulls_url": f"{url}/pulls{{/number}}",
            "issues_url": f"{url}/issues{{/number}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "created_at": repo.created_at,
            "updated_at": repo.pushed_at,
            "pushed_at": repo.pushed_at,
            "git_url": repo.clone_url,
            "ssh_url": repo.clone_url,
            "clone_url": repo.clone_url,
            "svn_url": self.html(repo.full_name),
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": False,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_count,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "topics": [],
            "visibility": "public",
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
            "default_branch": repo.default_branch,
        }
        if full:
            out.update(
                network_count=0,
                subscribers_count=0,
                temp_clone_token=None,
                permissions={"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
            )
        return out

    def fork(self, full_name: str, owner: Account, parent: RepoData) -> dict[str, Any]:
        """A contributor's fork, which this server does not serve (its git URLs lead nowhere)."""
        nowhere = str(parent.bare_path.parent / "forks" / f"{full_name.replace('/', '+')}.git")
        url = f"{self.api}/repos/{full_name}"
        return {
            "id": owner.id * 1000 + parent.id % 1000,
            "node_id": _node_id("R", owner.id),
            "name": parent.name,
            "full_name": full_name,
            "private": False,
            "owner": self.user(owner),
            "fork": True,
            "url": url,
            "html_url": self.html(full_name),
            "clone_url": nowhere,
            "git_url": nowhere,
            "ssh_url": nowhere,
            "default_branch": parent.default_branch,
            "visibility": "public",
        }

    def labels(self, repo: RepoData, names: Iterable[str]) -> list[dict[str, Any]]:
        """Label objects for ``names``."""
        out = []
        for name in names:
            digest = int(hashlib.sha256(f"{repo.id}:{name}".encode()).hexdigest()[:8], 16)
            out.append(
                {
                    "id": digest,
                    "node_id": _node_id("LA", digest),
                    "url": f"{self.api}/repos/{repo.full_name}/labels/{urllib.parse.quote(name)}",
                    "name": name,
                    "color": f"{digest % 0xFFFFFF:06x}",
                    "default": name == "bug",
                    "description": None,
                }
            )
        return out

    def _issue_common(self, repo: RepoData, number: int, comments: int) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}/issues/{number}"
        return {
            "url": url,
            "repository_url": f"{self.api}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "timeline_url": f"{url}/timeline",
            "number": number,
            "locked": False,
            "active_lock_reason": None,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "performed_via_github_app": None,
            "reactions": {"url": f"{url}/reactions", "total_count": 0},
        }

    def issue(self, repo: RepoData, issue: IssueRecord, comments: int) -> dict[str, Any]:
        """An issue as ``GET /issues/{n}`` and the issue list show it."""
        return {
            **self._issue_common(repo, issue.number, comments),
            "html_url": self.html(repo.full_name, "issues", issue.number),
            "id": issue.id,
            "node_id": _node_id("I", issue.id),
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": self.labels(repo, issue.labels),
            "state": issue.state,
            "state_reason": issue.state_reason,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "author_association": issue.user.association,
            "body": issue.body,
        }

    def pull_as_issue(self, repo: RepoData, pull: PullRecord, comments: int) -> dict[str, Any]:
        """A pull request as the issues API shows it: issue fields plus a ``pull_request`` key."""
        html = self.html(repo.full_name, "pull", pull.number)
        return {
            **self._issue_common(repo, pull.number, comments),
            "html_url": html,
            "id": pull.id - 1,
            "node_id": _node_id("I", pull.id - 1),
            "title": pull.title,
            "user": self.user(pull.user),
            "labels": self.labels(repo, pull.labels),
            "state": pull.state,
            "state_reason": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "author_association": pull.user.association,
            "body": pull.body,
            "draft": pull.draft,
            "pull_request": {
                "url": f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": pull.merged_at,
            },
        }

    def _branch(
        self, label_owner: str, ref: str, sha: str, user: Account, repo: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {"label": f"{label_owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(user), "repo": repo}

    def pull(self, repo: RepoData, pull: PullRecord, repo_json: dict[str, Any]) -> dict[str, Any]:
        """A pull request in the list form of ``GET /pulls``; ``repo_json`` is :meth:`repo` of ``repo``."""
        url = f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}"
        html = self.html(repo.full_name, "pull", pull.number)
        issue_url = f"{self.api}/repos/{repo.full_name}/issues/{pull.number}"
        if pull.head_repo == repo.full_name:
            head_repo: dict[str, Any] | None = repo_json
        else:
            head_repo = self.fork(pull.head_repo, pull.head_owner, repo) if pull.head_repo else None
        return {
            "url": url,
            "id": pull.id,
            "node_id": _node_id("PR", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.api}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.api}/repos/{repo.full_name}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self.user(pull.user),
            "body": pull.body,
            "labels": self.labels(repo, pull.labels),
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._branch(pull.head_owner.login, pull.head_ref, pull.head_sha, pull.head_owner, head_repo),
            "base": self._branch(repo.owner.login, pull.base_ref, pull.base_sha, repo.owner, repo_json),
            "author_association": pull.user.association,
            "auto_merge": None,
            "draft": pull.draft,
        }

    def pull_full(self, repo: RepoData, pull: PullRecord, comments: int, stats: tuple[int, int, int]) -> dict[str, Any]:
        """A pull request as ``GET /pulls/{n}`` shows it: the list form plus merge state and sizes."""
        additions, deletions, changed = stats
        mergeable = None if pull.state == "closed" else True
        return {
            **self.pull(repo, pull, self.repo(repo)),
            "merged": pull.merged,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": "clean" if mergeable else "unknown",
            "merged_by": self.user(pull.merged_by),
            "comments": comments,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": len(pull.commits),
            "additions": additions,
            "deletions": deletions,
            "changed_files": changed,
        }

    def comment(self, repo: RepoData, comment: CommentRecord) -> dict[str, Any]:
        """An issue comment."""
        kind = "pull" if comment.issue_number in repo.pulls else "issues"
        return {
            "url": f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": self.html(repo.full_name, kind, comment.issue_number) + f"#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": _node_id("IC", comment.id),
            "user": self.user(comment.user),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": comment.user.association,
            "body": comment.body,
            "performed_via_github_app": None,
            "reactions": {
                "url": f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}/reactions",
                "total_count": 0,
            },
        }

    def file(self, repo: RepoData, head_sha: str, diff: _FileDiff) -> dict[str, Any]:
        """A changed file as ``GET /pulls/{n}/files`` lists it (no ``patch`` for binary files)."""
        quoted = urllib.parse.quote(diff.filename)
        out: dict[str, Any] = {
            "sha": diff.sha,
            "filename": diff.filename,
            "status": diff.status,
            "additions": diff.additions,
            "deletions": diff.deletions,
            "changes": diff.additions + diff.deletions,
            "blob_url": self.html(repo.full_name, "blob", head_sha, quoted),
            "raw_url": self.html(repo.full_name, "raw", head_sha, quoted),
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{quoted}?ref={head_sha}",
        }
        if diff.patch is not None:
            out["patch"] = diff.patch
        if diff.previous_filename is not None:
            out["previous_filename"] = diff.previous_filename
        return out

    def graphql_pull(self, repo: RepoData, pull: PullRecord) -> dict[str, Any]:
        """A GraphQL ``PullRequest`` node (the fixed field set described in :meth:`FakeGitHub.graphql_shape`)."""
        return {
            "number": pull.number,
            "title": pull.title,
            "url": self.html(repo.full_name, "pull", pull.number),
            "state": "MERGED" if pull.merged else pull.state.upper(),
            "isDraft": pull.draft,
            "merged": pull.merged,
            "mergedAt": pull.merged_at,
            "createdAt": pull.created_at,
            "updatedAt": pull.updated_at,
        }

    def graphql_issue(self, full_name: str, number: int, issue: IssueRecord | None) -> dict[str, Any]:
        """A GraphQL ``Issue`` node of ``closingIssuesReferences``."""
        owner, _, name = full_name.partition("/")
        return {
            "number": number,
            "title": issue.title if issue else None,
            "url": self.html(full_name, "issues", number),
            "state": issue.state.upper() if issue else None,
            "repository": {"nameWithOwner": full_name, "name": name, "owner": {"login": owner}},
        }

    def commit(self, repo: RepoData, commit: CommitRecord) -> dict[str, Any]:
        """A commit as ``GET /pulls/{n}/commits`` lists it."""
        base = f"{self.api}/repos/{repo.full_name}"
        person = {"name": commit.author_name, "email": commit.author_email, "date": commit.authored_at}
        committer = {"name": commit.committer_name, "email": commit.committer_email, "date": commit.committed_at}
        return {
            "sha": commit.sha,
            "node_id": _node_id("C", int(commit.sha[:12], 16)),
            "commit": {
                "author": person,
                "committer": committer,
                "message": commit.message,
                "tree": {"sha": commit.tree, "url": f"{base}/git/trees/{commit.tree}"},
                "url": f"{base}/git/commits/{commit.sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{base}/commits/{commit.sha}",
            "html_url": self.html(repo.full_name, "commit", commit.sha),
            "comments_url": f"{base}/commits/{commit.sha}/comments",
            "author": self.user(commit.author),
            "committer": self.user(commit.author),
            "parents": [
                {"sha": p, "url": f"{base}/commits/{p}", "html_url": self.html(repo.full_name, "commit", p)}
                for p in commit.parents
            ],
        }


# --------------------------------------------------------------------------------------------------
# diffs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileDiff:
    filename: str
    previous_filename: str | None
    status: str
    additions: int
    deletions: int
    sha: str
    patch: str | None


@dataclass(frozen=True)
class _PullDiff:
    text: bytes
    files: tuple[_FileDiff, ...]

    @property
    def stats(self) -> tuple[int, int, int]:
        """``(additions, deletions, changed_files)``."""
        return (sum(f.additions for f in self.files), sum(f.deletions for f in self.files), len(self.files))


def _decode(raw: bytes) -> str:
    # GitHub shows a patch of a non-UTF-8 file transcoded; Latin-1 never fails and matches its usual guess.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _file_diff(chunk: bytes) -> _FileDiff:
    """Parse one ``diff --git`` section of git's output into the fields of a ``/pulls/{n}/files`` entry."""
    head, sep, body = chunk.partition(b"\n@@")
    lines = head.split(b"\n")
    old, new = lines[0][len(b"diff --git a/") :].decode().split(" b/", 1)
    meta = {line.split(b" ", 1)[0]: line for line in lines[1:]}
    status = (
        "added"
        if b"new" in meta
        else "removed"
        if b"deleted" in meta
        else "renamed"
        if b"rename" in meta
        else "modified"
    )
    index = meta.get(b"index", b"index 0..0").split()[1].decode().split("..")
    sha = index[0] if status == "removed" else index[1]
    patch_lines = (b"@@" + body).split(b"\n") if sep else []
    adds = sum(1 for line in patch_lines if line.startswith(b"+"))
    dels = sum(1 for line in patch_lines if line.startswith(b"-"))
    patch = _decode(b"\n".join(patch_lines).rstrip(b"\n")) if sep else None
    return _FileDiff(new, old if status == "renamed" else None, status, adds, dels, sha, patch)


def parse_diff(text: bytes) -> tuple[_FileDiff, ...]:
    """Split a ``git diff`` into per-file entries, in git's (path) order."""
    parts = re.split(rb"(?m)^(?=diff --git )", text)
    return tuple(_file_diff(part) for part in parts if part.startswith(b"diff --git "))


class _DiffCache:
    """Pull-request diffs by ``(bare, base, head)``: immutable, so computed once, many per git call."""

    def __init__(self) -> None:
        self._texts: dict[tuple[Path, str, str], bytes] = {}
        self._lock = threading.Lock()

    def get(self, repo: RepoData, pull: PullRecord) -> _PullDiff:
        """The diff of ``pull`` (its stored copy when git no longer has the head)."""
        if pull.stored_diff is not None:
            return _PullDiff(
                pull.stored_diff.encode("utf-8", "surrogateescape"),
                parse_diff(pull.stored_diff.encode("utf-8", "surrogateescape")),
            )
        key = (repo.bare_path, pull.base_sha, pull.head_sha)
        with self._lock:
            if key not in self._texts:
                self._fill(repo)
            text = self._texts[key]
        return _PullDiff(text, parse_diff(text))

    def _fill(self, repo: RepoData) -> None:
        """Compute every missing diff of ``repo`` with one ``git diff-tree --stdin``."""
        wanted = {
            (p.head_sha, p.base_sha)
            for p in repo.pulls.values()
            if p.stored_diff is None and (repo.bare_path, p.base_sha, p.head_sha) not in self._texts
        }
        pairs = "".join(f"{head} {base}\n" for head, base in sorted(wanted))
        out = run_git(repo.bare_path, "diff-tree", "--stdin", *DIFF_ARGS, input=pairs.encode())
        by_head: dict[str, bytes] = {}
        current: str | None = None
        chunks: list[bytes] = []
        for line in out.split(b"\n"):
            if _HEX40.match(line):
                if current is not None:
                    by_head[current] = b"\n".join(chunks)
                current, chunks = line.decode(), []
            else:
                chunks.append(line)
        if current is not None:
            by_head[current] = b"\n".join(chunks)
        for head, base in wanted:
            text = by_head.get(head, b"")
            self._texts[(repo.bare_path, base, head)] = text.rstrip(b"\n") + b"\n" if text.strip() else b""

    def patch(self, repo: RepoData, pull: PullRecord) -> bytes:
        """The ``git format-patch`` mailbox of ``pull``'s commits."""
        if pull.stored_patch is not None:
            return pull.stored_patch.encode("utf-8", "surrogateescape")
        return run_git(repo.bare_path, "format-patch", "--stdout", f"{pull.base_sha}..{pull.head_sha}")


# --------------------------------------------------------------------------------------------------
# per-repository index: orders, filters and rendered items, cached per repository version
# --------------------------------------------------------------------------------------------------


class _RepoIndex:
    """Sorted orders and rendered JSON of one repository version, so each page is a slice."""

    def __init__(self, repo: RepoData, shapes: _Shapes) -> None:
        self.repo, self.shapes, self.version = repo, shapes, repo.version
        self.comment_counts: dict[int, int] = {}
        for c in repo.comments:
            self.comment_counts[c.issue_number] = self.comment_counts.get(c.issue_number, 0) + 1
        self.comments_by_id = {c.id: c for c in repo.comments}
        self._json: dict[tuple[str, int], bytes] = {}
        self._orders: dict[tuple[Any, ...], list[int]] = {}
        self._lock = threading.Lock()
        self._repo_json: dict[str, Any] | None = None

    def repo_json(self) -> dict[str, Any]:
        """The repository object embedded in every pull request's ``head``/``base``."""
        if self._repo_json is None:
            self._repo_json = self.shapes.repo(self.repo)
        return self._repo_json

    def item(self, kind: str, key: int) -> bytes:
        """The rendered JSON of one pull (``pull``), issue or pull-as-issue (``issue``) or comment."""
        cached = self._json.get((kind, key))
        if cached is None:
            cached = json.dumps(self._render(kind, key), ensure_ascii=False).encode()
            self._json[(kind, key)] = cached
        return cached

    def _render(self, kind: str, key: int) -> dict[str, Any]:
        repo, shapes = self.repo, self.shapes
        if kind == "pull":
            return shapes.pull(repo, repo.pulls[key], self.repo_json())
        if kind == "comment":
            return shapes.comment(repo, self.comments_by_id[key])
        count = self.comment_counts.get(key, 0)
        if key in repo.pulls:
            return shapes.pull_as_issue(repo, repo.pulls[key], count)
        return shapes.issue(repo, repo.issues[key], count)

    def order(self, key: tuple[Any, ...], build: Callable[[], list[int]]) -> list[int]:
        """A cached ordering of numbers/ids for one query shape."""
        with self._lock:
            if key not in self._orders:
                self._orders[key] = build()
            return self._orders[key]

    def pulls(self, state: str, sort: str, descending: bool, base: str | None) -> list[int]:
        """Pull-request numbers for a ``GET /pulls`` query."""

        def build() -> list[int]:
            pulls = [
                p
                for p in self.repo.pulls.values()
                if state in ("all", p.state) and (base is None or p.base_ref == base)
            ]
            pulls.sort(
                key=lambda p: (p.created_at if sort == "created" else p.updated_at, p.number), reverse=descending
            )
            return [p.number for p in pulls]

        return self.order(("pulls", state, sort, descending, base), build)

    def issues(self, state: str, sort: str, descending: bool, since: str | None, labels: tuple[str, ...]) -> list[int]:
        """Issue numbers (pull requests included) for a ``GET /issues`` query."""

        def build() -> list[int]:
            every: list[IssueRecord | PullRecord] = [*self.repo.issues.values(), *self.repo.pulls.values()]
            items = [
                i
                for i in every
                if state in ("all", i.state)
                and (since is None or i.updated_at >= since)
                and set(labels) <= set(i.labels)
            ]
            items.sort(key=lambda i: (self._sort_key(i, sort), i.number), reverse=descending)
            return [i.number for i in items]

        return self.order(("issues", state, sort, descending, since, labels), build)

    def _sort_key(self, item: IssueRecord | PullRecord, sort: str) -> Any:
        if sort == "comments":
            return self.comment_counts.get(item.number, 0)
        return item.created_at if sort == "created" else item.updated_at

    def comments(self, number: int | None, since: str | None, sort: str | None, descending: bool) -> list[int]:
        """Comment ids of one thread (``number``) or the whole repository."""

        def build() -> list[int]:
            items = [
                c
                for c in self.repo.comments
                if (number is None or c.issue_number == number) and (since is None or c.updated_at >= since)
            ]
            if sort is None:
                items.sort(key=lambda c: c.id)
            else:
                items.sort(
                    key=lambda c: (c.created_at if sort == "created" else c.updated_at, c.id), reverse=descending
                )
            return [c.id for c in items]

        return self.order(("comments", number, since, sort, descending), build)


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


class _RestApi:
    """Routes authenticated, rate-limited requests to GitHub's endpoints over the served repositories."""

    def __init__(
        self, repos: Callable[[], list[RepoData]], url: str, viewer: Account, max_diff_files: int, hidden: set[str]
    ) -> None:
        self.repos, self.url, self.viewer = repos, url, viewer
        self.max_diff_files, self.hidden = max_diff_files, hidden
        self.shapes = _Shapes(url)
        self.diffs = _DiffCache()
        self._indexes: dict[int, _RepoIndex] = {}
        self._lock = threading.Lock()

    def route(self, request: _Request, identity: str) -> _Response:
        """Answer a request that passed auth and the rate limit."""
        path = request.path
        if request.method == "POST" and path == "/graphql":
            return self._graphql(request)
        if request.method != "GET":
            return _Response.error(404, "Not Found")
        if path == "/user":
            if identity == "anonymous":
                return _Response.error(401, "Requires authentication")
            return _Response.json(200, {**(self.shapes.user(self.viewer) or {}), "name": self.viewer.name})
        if m := _REPO_ID_PATH.match(path):
            repo = self._visible(next((r for r in self.repos() if r.id == int(m.group(1))), None))
            return self._repo_route(request, repo, m.group(2) or "")
        if m := _REPOS_PATH.match(path):
            return self._named_repo_route(request, f"{m.group(1)}/{m.group(2)}", m.group(3) or "")
        if m := _HTML_DIFF_PATH.match(path):
            repo = self._visible(find_repo(self.repos(), f"{m.group(1)}/{m.group(2)}"))
            if repo is None:
                return _Response.error(404, "Not Found")
            return self._pull_text(repo, int(m.group(3)), m.group(4))
        return _Response.error(404, "Not Found")

    def _visible(self, repo: RepoData | None) -> RepoData | None:
        return None if repo is None or repo.full_name.lower() in self.hidden else repo

    def _index(self, repo: RepoData) -> _RepoIndex:
        with self._lock:
            index = self._indexes.get(repo.id)
            if index is None or index.version != repo.version or index.repo is not repo:
                index = self._indexes[repo.id] = _RepoIndex(repo, self.shapes)
            return index

    def _moved(self, location: str) -> _Response:
        body = {"message": "Moved Permanently", "url": location, "documentation_url": DOCS}
        return _Response.json(301, body, {"Location": location})

    def _named_repo_route(self, request: _Request, full_name: str, rest: str) -> _Response:
        repo = self._visible(find_repo(self.repos(), full_name))
        if repo is not None and repo.full_name.lower() != full_name.lower():
            query = f"?{request.raw_query}" if request.raw_query else ""
            return self._moved(f"{self.url}/repositories/{repo.id}{rest}{query}")
        return self._repo_route(request, repo, rest)

    def _repo_route(self, request: _Request, repo: RepoData | None, rest: str) -> _Response:
        if repo is None:
            return _Response.error(404, "Not Found")
        for pattern, name in _REPO_ROUTES:
            if m := pattern.match(rest):
                handler = getattr(self, name)
                return handler(request, repo, self._index(repo), *(int(g) for g in m.groups()))
        return _Response.error(404, "Not Found")

    # pagination ---------------------------------------------------------------------------------

    def _page_bounds(self, request: _Request, total: int) -> tuple[slice, str]:
        per_page = min(max(_int(request.query.get("per_page"), 30), 1), 100)
        page = max(_int(request.query.get("page"), 1), 1)
        last = max(1, -(-total // per_page))
        return slice((page - 1) * per_page, page * per_page), self._links(request, page, last)

    def _links(self, request: _Request, page: int, last: int) -> str:
        def url(n: int) -> str:
            query = {**request.query, "page": str(n)}
            return f"<{self.url}{request.path}?{urllib.parse.urlencode(query)}>"

        rels = []
        if page < last:
            rels += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            rels += [f'{url(1)}; rel="first"', f'{url(min(page - 1, last))}; rel="prev"']
        return ", ".join(rels)

    def _page(self, request: _Request, index: _RepoIndex, kind: str, keys: Sequence[int]) -> _Response:
        window, links = self._page_bounds(request, len(keys))
        body = b"[" + b",".join(index.item(kind, k) for k in keys[window]) + b"]"
        return _Response(200, body, {"Content-Type": JSON_TYPE, **({"Link": links} if links else {})})

    def _static_page(self, request: _Request, items: Sequence[dict[str, Any]]) -> _Response:
        window, links = self._page_bounds(request, len(items))
        return _Response.json(200, list(items[window]), {"Link": links} if links else {})

    # repositories and pull requests -------------------------------------------------------------

    def _get_repo(self, request: _Request, repo: RepoData, index: _RepoIndex) -> _Response:
        return _Response.json(200, self.shapes.repo(repo, full=True))

    def _list_pulls(self, request: _Request, repo: RepoData, index: _RepoIndex) -> _Response:
        q = request.query
        state = _choice(q, "state", "open", ("open", "closed", "all"))
        sort = _choice(q, "sort", "created", ("created", "updated"))
        direction = _choice(q, "direction", "desc" if sort == "created" else "asc", ("asc", "desc"))
        return self._page(request, index, "pull", index.pulls(state, sort, direction == "desc", q.get("base")))

    def _get_pull(self, request: _Request, repo: RepoData, index: _RepoIndex, number: int) -> _Response:
        if media := _TEXT_MEDIA.search(request.headers.get("Accept", "")):
            return self._pull_text(repo, number, media.group(1))
        pull = repo.pulls.get(number)
        if pull is None:
            return _Response.error(404, "Not Found")
        stats = self.diffs.get(repo, pull).stats
        return _Response.json(200, self.shapes.pull_full(repo, pull, index.comment_counts.get(number, 0), stats))

    def _pull_text(self, repo: RepoData, number: int, kind: str) -> _Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return _Response.error(404, "Not Found")
        diff = self.diffs.get(repo, pull)
        if len(diff.files) > self.max_diff_files:
            return _Response.error(
                406,
                f"Sorry, the diff exceeded the maximum number of files ({self.max_diff_files}). Consider "
                "using 'List pull requests files' API or locally cloning the repository instead.",
                errors=[{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
            )
        text = diff.text if kind == "diff" else self.diffs.patch(repo, pull)
        return _Response(200, text, {"Content-Type": f"application/vnd.github.v3.{kind}; charset=utf-8"})

    def _pull_commits(self, request: _Request, repo: RepoData, index: _RepoIndex, number: int) -> _Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return _Response.error(404, "Not Found")
        return self._static_page(request, [self.shapes.commit(repo, c) for c in pull.commits])

    def _pull_files(self, request: _Request, repo: RepoData, index: _RepoIndex, number: int) -> _Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return _Response.error(404, "Not Found")
        files = self.diffs.get(repo, pull).files
        return self._static_page(request, [self.shapes.file(repo, pull.head_sha, f) for f in files])

    # issues and comments ------------------------------------------------------------------------

    def _list_issues(self, request: _Request, repo: RepoData, index: _RepoIndex) -> _Response:
        q = request.query
        state = _choice(q, "state", "open", ("open", "closed", "all"))
        sort = _choice(q, "sort", "created", ("created", "updated", "comments"))
        direction = _choice(q, "direction", "desc", ("asc", "desc"))
        labels = tuple(sorted(x.strip() for x in q.get("labels", "").split(",") if x.strip()))
        keys = index.issues(state, sort, direction == "desc", _since(q), labels)
        return self._page(request, index, "issue", keys)

    def _missing_issue(self, repo: RepoData, number: int, rest: str) -> _Response | None:
        """410 for a deleted issue, 301 for a transferred one, 404 for none; ``None`` when it exists."""
        if number in repo.deleted_issues:
            return _Response.error(410, "This issue was deleted")
        if number in repo.moved_issues:
            name, new_number = parse_issue_ref(repo.moved_issues[number])
            target = find_repo(self.repos(), name)
            if target is not None:
                return self._moved(f"{self.url}/repositories/{target.id}/issues/{new_number}{rest}")
        if number not in repo.issues and number not in repo.pulls:
            return _Response.error(404, "Not Found")
        return None

    def _get_issue(self, request: _Request, repo: RepoData, index: _RepoIndex, number: int) -> _Response:
        missing = self._missing_issue(repo, number, "")
        return missing or _Response(200, index.item("issue", number), {"Content-Type": JSON_TYPE})

    def _issue_comments(self, request: _Request, repo: RepoData, index: _RepoIndex, number: int) -> _Response:
        missing = self._missing_issue(repo, number, "/comments")
        keys = index.comments(number, _since(request.query), None, False)
        return missing or self._page(request, index, "comment", keys)

    def _repo_comments(self, request: _Request, repo: RepoData, index: _RepoIndex) -> _Response:
        q = request.query
        sort = _choice(q, "sort", "", ("", "created", "updated")) or None
        direction = _choice(q, "direction", "desc", ("asc", "desc"))
        keys = index.comments(None, _since(q), sort, direction == "desc")
        return self._page(request, index, "comment", keys)

    def _get_comment(self, request: _Request, repo: RepoData, index: _RepoIndex, comment_id: int) -> _Response:
        if comment_id not in index.comments_by_id:
            return _Response.error(404, "Not Found")
        return _Response(200, index.item("comment", comment_id), {"Content-Type": JSON_TYPE})

    # graphql ------------------------------------------------------------------------------------

    def _graphql(self, request: _Request) -> _Response:
        try:
            doc = json.loads(request.body or b"null")
            query, variables = doc["query"], doc.get("variables") or {}
        except (ValueError, TypeError, KeyError):
            return _Response.error(400, "Problems parsing JSON")
        blocks = _segments(_GQL_REPO, query)
        if not blocks:
            message = "This server only answers repository { pullRequest { closingIssuesReferences } } queries"
            return _Response.json(200, {"errors": [{"message": message}]})
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
        return _Response.json(200, {"data": data, **({"errors": errors} if errors else {})})

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


# --------------------------------------------------------------------------------------------------
# the server: lifecycle, auth, rate limits, faults, request log
# --------------------------------------------------------------------------------------------------


class FakeGitHub:
    """A GitHub REST v3 server on ``127.0.0.1:<free port>`` serving a world's records, in a daemon thread.

    Use as a context manager (or :meth:`start`/:meth:`stop`); point PyGithub at :attr:`url`::

        with FakeGitHub(world) as server:
            gh = Github(base_url=server.url, auth=Auth.Token("test-token"), seconds_between_requests=0)

    ``token=None`` accepts any (or no) credentials; otherwise a wrong token answers 401 and no token
    makes the caller anonymous, with ``anonymous_limit`` requests per window. ``rate_limit`` and
    ``graphql_limit`` are the token's budgets per ``rate_window_s``. A diff with more than
    ``max_diff_files`` changed files answers 406, as GitHub's does above 300. :meth:`inject` scripts
    faults; :attr:`requests` logs what was asked. A served :class:`World` may change while serving.
    """

    def __init__(
        self,
        world_or_repos: World | Iterable[RepoData],
        token: str | None = "test-token",
        *,
        rate_limit: int = 5000,
        graphql_limit: int = 5000,
        rate_window_s: float = 3600.0,
        anonymous_limit: int = 60,
        max_diff_files: int = 300,
        login: str = "swerl-bot",
    ) -> None:
        self._world = world_or_repos if isinstance(world_or_repos, World) else None
        self._repo_list = [] if self._world is not None else list(world_or_repos)  # type: ignore[arg-type]
        self._token_digest = None if token is None else hashlib.sha256(token.encode()).digest()
        self._limits = {"core": rate_limit, "graphql": graphql_limit, "search": 30}
        self._anonymous_limit, self._window = anonymous_limit, rate_window_s
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self.max_diff_files = max_diff_files
        self.viewer = Account(login, 1, name="swerl bot")
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []
        self._hidden: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._api: _RestApi | None = None
        self.url = ""

    # lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._api = _RestApi(self._repos, self.url, self.viewer, self.max_diff_files, self._hidden)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and free the port."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _repos(self) -> list[RepoData]:
        return list(self._world.repos.values()) if self._world is not None else list(self._repo_list)

    # scripting ----------------------------------------------------------------------------------

    def inject(
        self,
        path_regex: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        kind: Literal["status", "reset", "delay"] = "status",
        delay_s: float = 0.0,
        method: str | None = None,
    ) -> Fault:
        """Script a fault for the next ``times`` requests whose path matches ``path_regex``.

        Faults are consumed in the order they were injected. ``body`` may be JSON-able, ``str`` or
        ``bytes``; by default it is GitHub's ``{"message": …}`` for ``status``.
        """
        if kind == "status" and status is None:
            raise DemoError("a status fault needs a status")
        fault = Fault(re.compile(path_regex), kind, status, dict(headers or {}), body, times, delay_s, method)
        with self._lock:
            self._faults.append(fault)
        return fault

    def inject_secondary_rate_limit(
        self, path_regex: str = ".*", *, retry_after: int | None = None, times: int = 1
    ) -> Fault:
        """Answer 403 "You have exceeded a secondary rate limit" (with ``Retry-After`` if given)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return self.inject(
            path_regex,
            status=403,
            headers=headers,
            times=times,
            body={"message": SECONDARY_LIMIT_MESSAGE, "documentation_url": DOCS},
        )

    def inject_retry_after(
        self, path_regex: str = ".*", *, seconds: int = 1, status: int = 429, times: int = 1
    ) -> Fault:
        """Answer ``status`` (429 or 403) with ``Retry-After: seconds``."""
        return self.inject(
            path_regex,
            status=status,
            headers={"Retry-After": str(seconds)},
            times=times,
            body={"message": "Too many requests, retry later.", "documentation_url": DOCS},
        )

    def exhaust_rate_limit(self, resource: str = "core", reset_in_s: float = 60.0) -> None:
        """Spend the token's whole budget for ``resource``; it refills ``reset_in_s`` seconds from now."""
        with self._lock:
            budget = self._budget("token", resource)
            budget.used, budget.reset_at = budget.limit, time.time() + reset_in_s

    def hide_repo(self, full_name: str) -> None:
        """Make a repository private to this token: every request for it answers 404."""
        self._hidden.add(full_name.lower())

    @staticmethod
    def graphql_shape() -> str:
        """An example of the GraphQL query shape ``POST /graphql`` answers.

        Any number of (optionally aliased) ``repository(owner: …, name: …)`` blocks, each holding any
        number of (optionally aliased) ``pullRequest(number: …)`` fields, which may ask for
        ``closingIssuesReferences(first: K) { totalCount nodes { number repository { nameWithOwner } } }``.
        Arguments may be literals or ``$variables``. Matching is by regular expression, not a parser, and
        nodes carry a fixed set of fields whatever the selection asks: a repository ``nameWithOwner``; a
        pull request ``number``, ``title``, ``url``, ``state`` (OPEN/CLOSED/MERGED), ``isDraft``,
        ``merged``, ``mergedAt``, ``createdAt``, ``updatedAt`` and, when asked,
        ``closingIssuesReferences { totalCount nodes pageInfo }`` whose nodes carry ``number``, ``title``,
        ``url``, ``state``, ``repository { nameWithOwner name owner { login } }``. Unknown repositories and
        pull requests answer ``null`` plus a ``NOT_FOUND`` error, as GitHub does. Other queries answer
        200 with only an ``errors`` entry.
        """
        return (
            "query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) {\n"
            "  pr2: pullRequest(number: 2) { number closingIssuesReferences(first: 10) {\n"
            "    nodes { number repository { nameWithOwner } } } } } }"
        )

    # request log --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far (method, path, query string, status), oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests were made since the start or the last :meth:`reset_counts`."""
        with self._lock:
            return len(self._log)

    def reset_counts(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._log.clear()

    def _record(self, request: _Request, status: int) -> None:
        with self._lock:
            self._log.append(RequestRecord(request.method, request.path, request.raw_query, status))

    # answering ----------------------------------------------------------------------------------

    def handle(self, request: _Request) -> _Response:
        """Answer one request (faults first, then auth, rate limit and routing) and log it."""
        response = self._respond(request)
        self._record(request, response.status)
        return response

    def _respond(self, request: _Request) -> _Response:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.kind == "reset":
                return _Response(0, reset=True)
            if fault.kind == "delay":
                self._stopping.wait(fault.delay_s)
            if fault.status is not None:
                return self._fault_response(fault)
        identity = self._identify(request.headers)
        if identity is None:
            return self._with_rate(_Response.error(401, "Bad credentials"), "anonymous", "core")
        if request.path == "/rate_limit":
            return self._with_rate(self._rate_limit(identity), identity, "core")
        resource = "graphql" if request.path == "/graphql" else "core"
        with self._lock:
            allowed = self._budget(identity, resource).take()
        if not allowed:
            message = f"API rate limit exceeded for user ID {self.viewer.id}."
            return self._with_rate(_Response.error(403, message), identity, resource)
        return self._with_rate(self._route(request, identity), identity, resource)

    def _route(self, request: _Request, identity: str) -> _Response:
        assert self._api is not None
        try:
            return self._api.route(request, identity)
        except ValueError as exc:
            return _Response.error(422, "Validation Failed", errors=[{"message": str(exc)}])
        except DemoError as exc:
            return _Response.error(500, f"Server Error: {exc}")

    def _take_fault(self, request: _Request) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(request.method, request.path)), None)
            if fault is not None:
                fault.times -= 1
                self._faults = [f for f in self._faults if f.times > 0]
        return fault

    def _fault_response(self, fault: Fault) -> _Response:
        status = fault.status or 500
        body = fault.body if fault.body is not None else {"message": HTTPStatus(status).phrase}
        if isinstance(body, str | bytes):
            raw = body.encode() if isinstance(body, str) else body
            response = _Response(status, raw, {"Content-Type": "text/plain; charset=utf-8"})
        else:
            response = _Response.json(status, body)
        with self._lock:
            rate = self._budget("token", "core").headers("core")
        response.headers = {**rate, **response.headers, **fault.headers}
        return response

    def _identify(self, headers: Message) -> str | None:
        """``"token"`` for the right token, ``"anonymous"`` without one, ``None`` for a wrong one."""
        auth = headers.get("Authorization")
        if self._token_digest is None:
            return "token"
        if not auth:
            return "anonymous"
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        digest = hashlib.sha256(secret.strip().encode()).digest()
        return "token" if hmac.compare_digest(digest, self._token_digest) else None

    def _budget(self, identity: str, resource: str) -> _Budget:
        key = (identity, resource)
        if key not in self._budgets:
            limit = self._anonymous_limit if identity == "anonymous" else self._limits.get(resource, 5000)
            self._budgets[key] = _Budget(limit, self._window)
        return self._budgets[key]

    def _with_rate(self, response: _Response, identity: str, resource: str) -> _Response:
        with self._lock:
            rate = self._budget(identity, resource).headers(resource)
        response.headers = {**rate, "X-GitHub-Media-Type": "github.v3; format=json", **response.headers}
        return response

    def _rate_limit(self, identity: str) -> _Response:
        with self._lock:
            resources = {name: self._budget(identity, name).snapshot() for name in ("core", "graphql", "search")}
        return _Response.json(200, {"resources": resources, "rate": resources["core"]})


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can close its keep-alive connections on shutdown."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: FakeGitHub) -> None:
        super().__init__(address, handler)
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it in its own thread."""
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every connection still open (idle keep-alive ones included)."""
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into :meth:`FakeGitHub.handle` calls; logs nothing to stderr."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would add ~40 ms each
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 30
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """Answer any method the same way: :class:`_RestApi` decides."""
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        response = self.server.app.handle(_Request(self.command, parts.path, parts.query, query, self.headers, body))
        if response.reset:
            self._reset()
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the client sees a reset connection.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Log nothing: request lines may carry secrets in query strings."""
