"""Issue linking: which issues a pull request says it closes, read from its title, body and commits.

GitHub's closing keywords (close/closes/closed, fix/fixes/fixed, resolve/resolves/resolved; any case;
an optional colon) followed by ``#N``, ``OWNER/NAME#N`` or a full issue URL. HTML comments (PR
templates) are stripped first. A reference to another repository stays a cross-repository reference:
it is never resolved against the PR's own repository. This module is pure text processing; it must
never call the network or decide whether a number is an issue or a pull request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_KEYWORD = r"(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)"
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+"
_CLOSING = re.compile(
    rf"(?<![\w/-]){_KEYWORD}(?:\s*:\s*|\s+)"
    rf"(?:"
    rf"(?P<url>https?://[^\s/]+/(?P<url_repo>{_NAME})/issues/(?P<url_number>\d+))"
    rf"|(?P<repo>{_NAME})?#(?P<number>\d+)"
    rf")(?![\w-])",
    re.IGNORECASE,
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)


@dataclass(frozen=True)
class IssueReference:
    """A closing reference: the repository it points at, the number, and where it was found."""

    repo: str
    number: int
    source: str

    @property
    def key(self) -> tuple[str, int]:
        """Case-insensitive identity of the referenced issue (GitHub names ignore case)."""
        return (self.repo.lower(), self.number)


@dataclass(frozen=True)
class LinkedIssue:
    """One referenced issue with every place (``title``, ``body``, ``commit``, ``graphql``) naming it."""

    repo: str
    number: int
    sources: tuple[str, ...]


def strip_html_comments(text: str) -> str:
    """``text`` without ``<!-- … -->`` comments (an unterminated one runs to the end)."""
    return _HTML_COMMENT.sub(" ", text)


def closing_references(text: str | None, repo: str, source: str) -> list[IssueReference]:
    """Closing references in ``text`` in order; same-repository ones are named with ``repo``."""
    if not text:
        return []
    refs = []
    for match in _CLOSING.finditer(strip_html_comments(text)):
        target = match.group("url_repo") or match.group("repo") or repo
        number = int(match.group("url_number") or match.group("number"))
        if number <= 0:
            continue
        if target.lower() == repo.lower():
            target = repo
        refs.append(IssueReference(target, number, source))
    return refs


def link_issues(
    repo: str, title: str | None, body: str | None, commit_messages: Iterable[str] = ()
) -> list[LinkedIssue]:
    """All issues a PR closes by keyword in its title, body and commit messages, merged by target."""
    refs = closing_references(title, repo, "title") + closing_references(body, repo, "body")
    for message in commit_messages:
        refs += closing_references(message, repo, "commit")
    return merge_references(refs)


def merge_references(refs: Iterable[IssueReference]) -> list[LinkedIssue]:
    """Group references by target issue, keeping first-seen order and each distinct source once."""
    merged: dict[tuple[str, int], tuple[str, int, list[str]]] = {}
    for ref in refs:
        entry = merged.setdefault(ref.key, (ref.repo, ref.number, []))
        if ref.source not in entry[2]:
            entry[2].append(ref.source)
    return [LinkedIssue(r, n, tuple(sources)) for r, n, sources in merged.values()]
