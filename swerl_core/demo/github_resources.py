"""What the GitHub-compatible test server serves: GitHub's JSON shapes, pull-request diffs and per-repository indexes.

Shapes render the records of a :class:`~swerl_core.demo.world.World` as GitHub's REST and GraphQL answers;
the diff cache reads git once per pull request; an index keeps orders and filters per repository version.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.demo.errors import DemoError
from swerl_core.demo.world import (
    DIFF_ARGS,
    Account,
    CommentRecord,
    CommitRecord,
    IssueRecord,
    PullRecord,
    RepoData,
    run_git,
)
from swerl_core.diff_paths import section_paths

# --------------------------------------------------------------------------------------------------
# JSON shapes
# --------------------------------------------------------------------------------------------------

_HEX40 = re.compile(rb"^[0-9a-f]{40}$")


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_" + base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


class Shapes:
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

    def file(self, repo: RepoData, head_sha: str, diff: FileDiff) -> dict[str, Any]:
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
class FileDiff:
    filename: str
    previous_filename: str | None
    status: str
    additions: int
    deletions: int
    sha: str
    patch: str | None


@dataclass(frozen=True)
class PullDiff:
    text: bytes
    files: tuple[FileDiff, ...]

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


def _file_diff(chunk: bytes) -> FileDiff:
    """Parse one ``diff --git`` section of git's output into the fields of a ``/pulls/{n}/files`` entry."""
    head, sep, body = chunk.partition(b"\n@@")
    lines = head.split(b"\n")
    paths = section_paths(head.decode("utf-8", "replace"))
    if paths is None:
        raise DemoError(f"unreadable diff header: {lines[0]!r}")
    old, new = paths
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
    return FileDiff(new, old if status == "renamed" else None, status, adds, dels, sha, patch)


def parse_diff(text: bytes) -> tuple[FileDiff, ...]:
    """Split a ``git diff`` into per-file entries, in git's (path) order."""
    parts = re.split(rb"(?m)^(?=diff --git )", text)
    return tuple(_file_diff(part) for part in parts if part.startswith(b"diff --git "))


class DiffCache:
    """Pull-request diffs by ``(bare, base, head)``: immutable, so computed once, many per git call."""

    def __init__(self) -> None:
        self._texts: dict[tuple[Path, str, str], bytes] = {}
        self._lock = threading.Lock()

    def get(self, repo: RepoData, pull: PullRecord) -> PullDiff:
        """The diff of ``pull`` (its stored copy when git no longer has the head)."""
        if pull.stored_diff is not None:
            return PullDiff(
                pull.stored_diff.encode("utf-8", "surrogateescape"),
                parse_diff(pull.stored_diff.encode("utf-8", "surrogateescape")),
            )
        key = (repo.bare_path, pull.base_sha, pull.head_sha)
        with self._lock:
            if key not in self._texts:
                self._fill(repo)
            text = self._texts[key]
        return PullDiff(text, parse_diff(text))

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


class RepoIndex:
    """Sorted orders and rendered JSON of one repository version, so each page is a slice."""

    def __init__(self, repo: RepoData, shapes: Shapes) -> None:
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
