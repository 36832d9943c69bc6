"""Faults and budgets of the GitHub-compatible test server: scripted failures, rate-limit windows, the request log.

A :class:`Fault` makes matching requests fail the way GitHub (or the network) does; a :class:`RateBudget` counts one
identity's requests against one resource's limit. Nothing here speaks HTTP.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
    "out to GitHub Support for help, please include the request ID."
)


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


class RateBudget:
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
