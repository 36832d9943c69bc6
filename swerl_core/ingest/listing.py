"""Walking a ``sort=updated&direction=asc`` listing by ``since`` (keyset), so an edit made meanwhile skips nothing.

By page number such a listing shifts under an edit: the edited item moves to the end, every later item one
place toward the start, and the item that crosses the page boundary is never served (and a watermark moved
past it means no later run asks for it). Asking each page again from the newest ``updated_at`` seen keeps
the listing's start behind everything not yet served, whatever moves to the end meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from github import Github

from swerl_core.github import GitHubError, get_page, next_link
from swerl_core.ingest.payloads import parse_time

SINCE_STEP_BACK = timedelta(seconds=1)
"""``since`` has second precision and GitHub does not promise whether it is inclusive: ask one second earlier."""


MAX_STALE_PAGES = 10
"""Pages in a row with nothing new after which a listing is taken to be endless (a server's fault)."""


def updated_pages(
    gh: Github, path: str, params: Mapping[str, Any], since: datetime | None
) -> Iterator[list[dict[str, Any]]]:
    """Pages of ``path`` listed oldest update first from ``since``, each item once per version.

    The first request asks from ``since`` (everything when None); every later one from the newest
    ``updated_at`` seen, one second earlier, and the items already yielded with the same ``updated_at``
    are left out (an item edited meanwhile comes again, newer). When a whole page falls within one
    second, ``since`` cannot move: the pages of that ``since`` are then asked by number until an item
    newer than it comes. Ends when GitHub names no next page; an undisturbed listing costs what paging
    by number costs, plus the pages the repeated items fill. Yields only non-empty pages.
    """
    seen: set[tuple[str, str, str]] = set()
    stale = 0  # pages in a row that brought nothing not yielded before
    cursor, page = (_utc(since) if since is not None else None), 1
    while True:
        query = {**params, "sort": "updated", "direction": "asc"}
        if cursor is not None:
            query["since"] = since_param(cursor)
        if page > 1:
            query["page"] = page
        headers, data = get_page(gh, path, query, path)
        if not data:
            return
        fresh = [item for item in data if _version(item) not in seen]
        seen.update(_version(item) for item in fresh)
        stale = 0 if fresh else stale + 1
        if stale >= MAX_STALE_PAGES:
            raise GitHubError(f"GitHub answered {MAX_STALE_PAGES} pages of {path} in a row with nothing new: "
                              "a listing that never ends")  # fmt: skip
        if fresh:
            yield fresh
        if next_link(headers.get("link", "")) is None:
            return
        step = max(parse_time(item.get("updated_at"), "updated_at") for item in data) - SINCE_STEP_BACK
        if cursor is None or step > cursor:
            cursor, page = step, 1
        else:
            page += 1  # a page within one second: no progress by since, so by number


def resume_since(watermark: datetime | None) -> datetime | None:
    """Where a listing stopped at ``watermark`` resumes: a second earlier, so no item of that second is lost."""
    return watermark - SINCE_STEP_BACK if watermark is not None else None


def since_param(value: datetime) -> str:
    """``value`` as GitHub's ``since``: UTC, second precision (a naive value is taken as UTC)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _version(item: Mapping[str, Any]) -> tuple[str, str, str]:
    """What identifies one version of a listed item: its id (or number) and its ``updated_at``."""
    return (repr(item.get("id")), repr(item.get("number")), repr(item.get("updated_at")))
