"""GitHub REST JSON (pull, issue and comment objects from list endpoints) turned into typed values.

Pure functions over dicts: null bodies become ``""``, ghost (null) users become None, timestamps
become aware datetimes. A payload missing a field we rely on raises :class:`IngestError` instead of
being stored half-understood (:class:`IngestError`). This module must never do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

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


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No GitHub timestamp predates this (GitHub opened in 2008)."""
FUTURE_SLACK = timedelta(days=1)
"""How far past this machine's clock a GitHub timestamp may lie (clock skew), and no further."""


def parse_time(value: Any, what: str) -> datetime:
    """An ISO-8601 GitHub timestamp (``…Z``) as an aware datetime."""
    if not isinstance(value, str):
        raise IngestError(f"GitHub object has no valid {what}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise IngestError(f"GitHub object has a malformed {what}: {value[:40]!r}") from None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= datetime.now(UTC) + FUTURE_SLACK:
        # A year-1 date breaks the listing's arithmetic, a far-future one would freeze the watermark there.
        raise IngestError(f"GitHub object has an implausible {what}: {value[:40]!r}")
    return moment


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
    login, kind = _optional_str(user, "login", number), _optional_str(user, "type", number)
    return PullSummary(
        number=number,
        github_id=_optional_id(item),
        title=_optional_str(item, "title", number) or "",
        body=_optional_str(item, "body", number) or "",
        author_login=login,
        author_type=kind,
        author_is_bot=is_bot(login, kind),
        labels=_labels(item),
        state=str(item.get("state") or ""),
        draft=item.get("draft") is True,
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at"), "updated_at"),
        closed_at=optional_time(item.get("closed_at"), "closed_at"),
        merged_at=optional_time(item.get("merged_at"), "merged_at"),
        base_ref=_optional_str(base, "ref", number) or "",
        head_ref=_optional_str(head, "ref", number),
        base_sha=_sha(base.get("sha"), number),
        head_sha=_sha(head.get("sha"), number),
        merge_commit_sha=_optional_str(item, "merge_commit_sha", number),
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
        github_id=_optional_id(item),
        title=_optional_str(item, "title", number) or "",
        body=_optional_str(item, "body", number) or "",
        author_login=_optional_str(user, "login", number),
        author_type=_optional_str(user, "type", number),
        state=str(item.get("state") or ""),
        state_reason=_optional_str(item, "state_reason", number),
        labels=_labels(item),
        comments_count=comments if isinstance(comments, int) else 0,
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at"), "updated_at"),
        closed_at=optional_time(item.get("closed_at"), "closed_at"),
    )


def parse_comment(repo: str, item: dict[str, Any]) -> CommentRecord:
    """A :class:`CommentRecord` from an object of the issue comments API."""
    comment_id = item.get("id")
    if not _is_count(comment_id):
        raise IngestError("GitHub comment has no id")
    user = _user(item)
    number = issue_number_of(item)
    return CommentRecord(
        repo=repo,
        id=comment_id,
        issue_number=number,
        author_login=_optional_str(user, "login", number),
        author_type=_optional_str(user, "type", number),
        body=_optional_str(item, "body", number) or "",
        created_at=parse_time(item.get("created_at"), "created_at"),
        updated_at=parse_time(item.get("updated_at") or item.get("created_at"), "updated_at"),
    )


def issue_number_of(comment: dict[str, Any]) -> int:
    """The issue (or PR) number a comment belongs to, from its ``issue_url``."""
    url = comment.get("issue_url")
    tail = url.rstrip("/").rsplit("/", 1)[-1] if isinstance(url, str) else ""
    if not (tail.isascii() and tail.isdigit()) or not _is_count(int(tail)):
        raise IngestError("GitHub comment has no issue_url")
    return int(tail)


def repository_of(item: dict[str, Any]) -> str | None:
    """``owner/name`` of the repository an issue object belongs to (from ``repository_url``)."""
    url = item.get("repository_url")
    if not isinstance(url, str) or "/repos/" not in url:
        return None
    return url.split("/repos/", 1)[1].strip("/")


_MAX_ID = 2**63 - 1  # DuckDB's BIGINT


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID


def _user(item: dict[str, Any]) -> dict[str, Any]:
    user = item.get("user")
    return user if isinstance(user, dict) else {}


def _number(item: dict[str, Any]) -> int:
    number = item.get("number")
    if not _is_count(number):
        raise IngestError(f"GitHub answered with an object that has no valid number ({str(number)[:30]!r})")
    return number


def _optional_id(item: dict[str, Any]) -> int | None:
    value = item.get("id")
    return value if _is_count(value) else None


def _optional_str(item: dict[str, Any], key: str, number: int) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    raise IngestError(f"GitHub object #{number} has a {key} that is not text ({type(value).__name__})")


def _sha(value: Any, number: int) -> str:
    if not isinstance(value, str) or len(value) not in (40, 64) or any(c not in "0123456789abcdef" for c in value):
        raise IngestError(f"pull request #{number} has a malformed commit SHA in GitHub's answer")
    return value


def _labels(item: dict[str, Any]) -> tuple[str, ...]:
    labels = item.get("labels") or []
    if not isinstance(labels, list):
        return ()
    names = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str):
            names.append(name)
    return tuple(names)
