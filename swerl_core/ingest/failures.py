"""Which ingest failures are worth retrying: GitHub or the network hiccuped, or the input is wrong.

A scheduler retries an ingest only when the same call may succeed later — a 5xx that outlasted the
client's own retries, a timeout, a reset connection, a rate limit, a git fetch that failed. It never
retries a rejected token (401), an unknown repository (404), a refused request (other 4xx) or a bad
setting: those fail the same way every time and retrying only burns the rate limit.
"""

from __future__ import annotations

from swerl_core.errors import ConfigError
from swerl_core.git.errors import GitError
from swerl_core.github.client import GitHubError, RateLimited

_PERMANENT_STATUS = range(400, 429)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or the failure it was raised from) may go away if the same ingest is run again."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, RateLimited | GitError | TimeoutError | ConnectionError):
            return True
        if isinstance(cause, GitHubError):
            return cause.status is None or cause.status not in _PERMANENT_STATUS
        if isinstance(cause, ConfigError | ValueError):
            return False
        cause = cause.__cause__ or cause.__context__
    return False
