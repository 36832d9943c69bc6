"""The errors of talking to GitHub: :class:`GitHubError` and :class:`RateLimited`."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class GitHubError(SwerlError):
    """A GitHub request failed in a way the run cannot work around; the message is one line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(GitHubError):
    """Waiting for the rate limit would exceed ``max_rate_limit_wait_s``: stop and resume later."""
