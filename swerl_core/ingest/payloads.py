"""GitHub REST JSON (pull, issue and comment objects from list endpoints) turned into typed values.

Pure functions over dicts: null bodies become ``""``, ghost (null) users become None, timestamps
become aware datetimes. A payload missing a field we rely on raises :class:`IngestError` instead of
being stored half-understood (:class:`IngestError`). This module must never do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from swerl_core.ingest.errors import IngestError
from swerl_core.store.records import CommentRecord, IssueRecord


@dataclass(frozen=True)
class PullSummary:
    """A pull request as the list endpoint describes it (everything but its code)."""

    number: int
    github_id: int | None
    title: str
    body: str
    author_login: str | None
    author_type: str | None
    author_is_bot: bool
    labels: tuple[str, ...]
    state: str
    draft: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    base_ref: str
    head_ref: str | None
    base_sha: str
    head_sha: str
    merge_commit_sha: str | None


def parse_time(value: Any, what: str) -> datetime:
    """An ISO-8601 GitHub timestamp (``…Z``) as an aware datetime."""
    if not isinstance(value, str):
        raise IngestError(f"GitHub object has no valid {what}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise IngestError(f"GitHub object has a malformed {what}: {value[:40]!r}") from None


def optional_time(value: Any, what: str) -> datetime | None:
    """Like :func:`parse_time` but None stays None."""
    return None if value is None else parse_time(value, what)


def is_bot(login: str | None, user_type: str | None) -> bool:
    """GitHub Apps have type ``Bot``; their logins (and many bot accounts') end with ``[bot]``."""
    return user_type == "Bot" or (login or "").lower().endswith("[bot]")


def parse_pull(item: dict[str, Any]) -> PullSummary:
    """A :class:`PullSummary` from an object of ``GET /repos/{owner}/{repo}/pulls``."""
    number = _number(item)
    user = _user(item)
    base = item.get("base")
    head = item.get("head")
    if not isinstance(base, dict) or not isinstance(head, dict) or not base.get("sha") or not head.get("sha"):
        raise IngestError(f"pull request #{number} has no base/head commit in GitHub's answer")
    login, kind = user.get("login"), user.get("type")
    return PullSummary(
        number=number,
        github_id=item.get("id"),
        title=item.get("title") or "",
        body=item.get("body") or "",
        author_login=login,
        author_type=kind,
        author_is_bot=is_bot(login, kind),
        labels=_labels(item),
        state=str(item.get("state") or ""),
        draft=bool(item.get("draft")),
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at"), "updated_at"),
        closed_at=optional_time(item.get("closed_at"), "closed_at"),
        merged_at=optional_time(item.get("merged_at"), "merged_at"),
        base_ref=str(base.get("ref") or ""),
        head_ref=head.get("ref"),
        base_sha=str(base["sha"]),
        head_sha=str(head["sha"]),
        merge_commit_sha=item.get("merge_commit_sha"),
    )


def is_pull_request(item: dict[str, Any]) -> bool:
    """Whether an object of the issues API is in fact a pull request (GitHub shares the numbers)."""
    return item.get("pull_request") is not None


def parse_issue(repo: str, item: dict[str, Any]) -> IssueRecord:
    """An :class:`IssueRecord` from an object of the issues API (not a pull request)."""
    number = _number(item)
    user = _user(item)
    comments = item.get("comments")
    return IssueRecord(
        repo=repo,
        number=number,
        github_id=item.get("id"),
        title=item.get("title") or "",
        body=item.get("body") or "",
        author_login=user.get("login"),
        author_type=user.get("type"),
        state=str(item.get("state") or ""),
        state_reason=item.get("state_reason"),
        labels=_labels(item),
        comments_count=comments if isinstance(comments, int) else 0,
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at"), "updated_at"),
        closed_at=optional_time(item.get("closed_at"), "closed_at"),
    )


def parse_comment(repo: str, item: dict[str, Any]) -> CommentRecord:
    """A :class:`CommentRecord` from an object of the issue comments API."""
    comment_id = item.get("id")
    if not isinstance(comment_id, int):
        raise IngestError("GitHub comment has no id")
    user = _user(item)
    return CommentRecord(
        repo=repo,
        id=comment_id,
        issue_number=issue_number_of(item),
        author_login=user.get("login"),
        author_type=user.get("type"),
        body=item.get("body") or "",
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at") or item.get("created_at"), "updated_at"),
    )


def issue_number_of(comment: dict[str, Any]) -> int:
    """The issue (or PR) number a comment belongs to, from its ``issue_url``."""
    url = comment.get("issue_url")
    tail = url.rstrip("/").rsplit("/", 1)[-1] if isinstance(url, str) else ""
    if not tail.isdigit():
        raise IngestError("GitHub comment has no issue_url")
    return int(tail)


def repository_of(item: dict[str, Any]) -> str | None:
    """``owner/name`` of the repository an issue object belongs to (from ``repository_url``)."""
    url = item.get("repository_url")
    if not isinstance(url, str) or "/repos/" not in url:
        return None
    return url.split("/repos/", 1)[1].strip("/")


def _user(item: dict[str, Any]) -> dict[str, Any]:
    user = item.get("user")
    return user if isinstance(user, dict) else {}


def _number(item: dict[str, Any]) -> int:
    number = item.get("number")
    if not isinstance(number, int):
        raise IngestError("GitHub answered with an object that has no number")
    return number


def _labels(item: dict[str, Any]) -> tuple[str, ...]:
    labels = item.get("labels") or []
    names = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str):
            names.append(name)
    return tuple(names)
