"""The PyGithub client swerl uses: base URL, token, throttle and retries from :class:`GitHubConfig`.

Owns request counting (every HTTP attempt, retries included), rate-limit waits (bounded by
``max_rate_limit_wait_s``; beyond it a :class:`RateLimited` error stops the run cleanly), backoff
on 5xx / connection resets / timeouts, Link-header pagination over raw JSON, and the mapping of
PyGithub and ``requests`` failures to one-line :class:`GitHubError` messages. It must never log,
store or put the token in an exception message.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededExceedsMaxWait,
    RateLimitExceededException,
    UnknownObjectException,
)
from urllib3 import Retry
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import DecodeError, InvalidHeader, ProtocolError
from urllib3.response import BaseHTTPResponse

from swerl_core.config import GitHubConfig, Secret
from swerl_core.github.errors import GitHubError, RateLimited

# Importing PyGithub sets its logger to INFO with a handler of its own (github/__init__.py), so every
# followed redirect would print to the user's stderr. Our own progress lines say what matters.
logging.getLogger("github").setLevel(logging.WARNING)


@dataclass
class RequestMeter:
    """Counts every HTTP attempt to GitHub and every rate-limit wait (thread-safe)."""

    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_request(self) -> None:
        """Record one HTTP attempt (a response or a failed connection)."""
        with self._lock:
            self.requests += 1

    def count_retry(self) -> None:
        """Record that an attempt will be repeated."""
        with self._lock:
            self.retries += 1

    def count_wait(self, seconds: float) -> None:
        """Record one rate-limit wait of ``seconds``."""
        with self._lock:
            self.rate_limit_waits += 1
            self.rate_limit_wait_s += seconds


class MeteredRetry(GithubRetry):
    """``GithubRetry`` that reports to a :class:`RequestMeter` and bounds every rate-limit wait.

    Beyond PyGithub's own handling it also treats a ``Retry-After`` longer than the bound, a 403 with
    ``X-RateLimit-Remaining: 0`` (whatever its body says) and a 429 without ``Retry-After`` (a secondary
    limit) as rate limits.
    """

    def __init__(self, meter: RequestMeter | None = None, **kwargs: Any) -> None:
        self.meter = meter if meter is not None else RequestMeter()
        self.rate_limited = False
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> MeteredRetry:  # noqa: D102 - urllib3 protocol
        kw["meter"] = self.meter
        return super().new(**kw)  # type: ignore[return-value]

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:  # noqa: D102
        # urllib3 asks this once for every response it receives: the natural place to count them.
        self.meter.count_request()
        return super().is_retry(method, status_code, has_retry_after)

    def increment(  # type: ignore[override]  # noqa: D102 - urllib3 protocol
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        if response is None:
            self.meter.count_request()
        wait = self._rate_limit_wait(response) if response is not None else None
        if response is not None and wait is not None and wait > (self.max_rate_limit_wait or float("inf")):
            raise RateLimitExceededExceedsMaxWait(response.status, _body(response), dict(response.headers), wait=wait)
        if response is not None and wait is not None and self.get_retry_after(response) is None:
            retry = Retry.increment(self, method, url, response, error, _pool, _stacktrace)
            retry.get_backoff_time = lambda: wait  # type: ignore[method-assign]
        else:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        self.meter.count_retry()
        if response is not None and response.status in (403, 429):
            retry.rate_limited = True  # type: ignore[attr-defined]
        return retry

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:  # noqa: D102
        started = time.monotonic()
        super().sleep(response)
        if self.rate_limited:
            self.meter.count_wait(time.monotonic() - started)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """Seconds of a valid ``Retry-After`` header; None when it is absent or malformed.

        urllib3 would raise on a malformed value (``Retry-After: soon``) and abort the request; treated
        as absent, the response falls through to the reset or secondary-limit wait instead.
        """
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            return self.parse_retry_after(value)
        except (InvalidHeader, ValueError, OverflowError):  # not a number of seconds nor an HTTP date
            return None

    def _rate_limit_wait(self, response: BaseHTTPResponse) -> float | None:
        if response.status not in (403, 429):
            return None
        retry_after = self.get_retry_after(response)
        if retry_after is not None:
            return retry_after
        headers = response.headers
        reset = headers.get("X-RateLimit-Reset", "")
        if headers.get("X-RateLimit-Remaining") == "0" and reset.isdigit():
            return max(0.0, int(reset) - datetime.now(UTC).timestamp()) + 1.0
        if response.status == 429:
            return float(self.secondary_rate_wait)
        return None  # a 403 body may still say "rate limit": PyGithub's GithubRetry decides


def _body(response: BaseHTTPResponse) -> dict[str, str] | None:
    """The start of an error response's body for the exception; None when the body cannot be read."""
    try:
        data = response.data
    except (DecodeError, ProtocolError):  # a body urllib3 cannot decompress or read to the end
        return None
    return {"message": (data or b"").decode("utf-8", "replace")[:200]}


def connect(config: GitHubConfig, token: Secret | None, meter: RequestMeter | None = None) -> Github:
    """A PyGithub client for ``config.api_url`` with metered, bounded retries and the configured throttle."""
    retry = MeteredRetry(
        meter=meter,
        total=config.max_retries,
        # Nothing listening on this machine is not a network blip: say so at once instead of after every retry.
        connect=0 if _is_loopback(config.api_url) else None,
        backoff_factor=config.backoff_s,
        backoff_max=config.max_backoff_s,
        secondary_rate_wait=config.secondary_rate_wait_s,
        max_rate_limit_wait=config.max_rate_limit_wait_s,
        status_forcelist=[*range(500, 600), 429],
        raise_on_status=True,
    )
    return Github(
        base_url=config.api_url.rstrip("/"),
        auth=Auth.Token(token.reveal()) if token else None,
        timeout=max(1, int(round(config.timeout_s))),
        per_page=config.per_page,
        retry=retry,
        seconds_between_requests=config.seconds_between_requests,
        # PyGithub spaces "writes" (any non-GET) by 1 s; our only POSTs are GraphQL reads.
        seconds_between_writes=config.seconds_between_requests,
        user_agent="swerl-ingest",
    )


def request_meter(gh: Github) -> RequestMeter:
    """The :class:`RequestMeter` of a client built by :func:`connect`."""
    retry = gh.requester.kwargs.get("retry")
    if not isinstance(retry, MeteredRetry):
        raise TypeError("this Github client was not built by swerl_core.github.connect")
    return retry.meter


def get_json(gh: Github, path: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """GET ``path`` (relative to the API base, or an absolute API URL); returns (headers, JSON)."""
    try:
        return gh.requester.requestJsonAndCheck("GET", path, parameters=params)
    except Exception as exc:
        raise describe_failure(exc, path) from None


def post_graphql(gh: Github, query: str, variables: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Run a GraphQL query through PyGithub; returns its ``data`` object.

    With ``partial``, an answer whose only errors are objects below the top level that GitHub could not
    resolve (``NOT_FOUND``, such as one deleted pull request among a hundred) returns the rest of its data
    (those fields are null); PyGithub would raise 404 for the whole query.
    """
    try:
        _, data = gh.requester.graphql_query(query, variables)
    except GithubException as exc:
        if partial and _only_nested_not_found(exc.data):
            return exc.data["data"]  # type: ignore[index, no-any-return]
        raise describe_failure(exc, "graphql") from None
    except Exception as exc:
        raise describe_failure(exc, "graphql") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        raise GitHubError("GitHub GraphQL answered without a data object")
    return data["data"]


def _only_nested_not_found(answer: object) -> bool:
    """Whether a GraphQL answer has data and every error is a NOT_FOUND below the top-level field."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
        return False
    errors = answer.get("errors")
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(
            isinstance(e, dict)
            and e.get("type") == "NOT_FOUND"
            and isinstance(e.get("path"), list)
            and len(e["path"]) >= 2
            for e in errors
        )
    )


def paginate(gh: Github, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages of a list endpoint, following ``Link: rel="next"``; each page is checked to be a JSON list."""
    url: str | None = path
    query: dict[str, Any] | None = params
    read: set[str] = set()
    previous: list[dict[str, Any]] | None = None
    while url is not None:
        headers, data = get_page(gh, url, query, path)
        if not data:
            return  # an empty page ends a listing, whatever its Link header says
        if data == previous:
            raise GitHubError(f"GitHub answered {path} with the same page twice in a row: a listing that never ends")
        yield data
        previous, url, query = data, next_link(headers.get("link", "")), None
        if url is not None and url in read:
            raise GitHubError(f"GitHub's next-page link for {path} points back to a page already read")
        read.add(url or "")


def get_page(
    gh: Github, url: str, query: dict[str, Any] | None, path: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One page of list endpoint ``path`` (requested as ``url``), checked to be a JSON list of objects."""
    headers, data = get_json(gh, url, query)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise GitHubError(f"GitHub answered {path} with something other than a list of objects")
    return headers, data


def next_link(link_header: str) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    for part in link_header.split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        target = section[0].strip()
        if any(s.strip().replace(" ", "") == 'rel="next"' for s in section[1:]):
            return target[1:-1] if target.startswith("<") and target.endswith(">") else target
    return None


def describe_failure(exc: BaseException, what: str) -> GitHubError:
    """Turn a PyGithub / requests failure into a one-line :class:`GitHubError` (never with the token)."""
    if isinstance(exc, GitHubError):
        return exc
    if isinstance(exc, RateLimitExceededExceedsMaxWait):
        return RateLimited(
            f"rate limit: waiting {exc.wait or 0:.0f}s exceeds github.max_rate_limit_wait_s", status=exc.status
        )
    if isinstance(exc, RateLimitExceededException):
        return RateLimited("rate limit exceeded and retries are used up", status=exc.status)
    if isinstance(exc, BadCredentialsException) or (isinstance(exc, GithubException) and exc.status == 401):
        return GitHubError("GitHub rejected the token (401 Bad credentials); check GITHUB_TOKEN", status=401)
    if isinstance(exc, UnknownObjectException) or (isinstance(exc, GithubException) and exc.status == 404):
        return GitHubError(f"not found on GitHub (404): {what}", status=404)
    if isinstance(exc, GithubException):
        return GitHubError(f"GitHub answered {exc.status} for {what}: {_message(exc)}", status=exc.status)
    if isinstance(exc, requests.exceptions.RetryError):
        text = str(exc)
        # Only urllib3's reason counts: the URL in the text may hold "403" or "429" too (a port, an issue number).
        if "too many 403 error responses" in text or "too many 429 error responses" in text:
            return RateLimited("rate limit still exceeded after every retry")
        return GitHubError(f"GitHub kept failing for {what} after every retry ({_status_of(text)})")
    if isinstance(exc, requests.exceptions.Timeout):
        return GitHubError(f"GitHub did not answer in time for {what} (after every retry)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        request = exc.request
        where = f"at {_shown_url(request.url)}" if request is not None and request.url else f"for {what}"
        if "refused" in str(exc).lower():
            return GitHubError(f"cannot reach GitHub {where}: connection refused (is the server running there?)")
        return GitHubError(f"cannot reach GitHub {where} (connection failed after every retry)")
    if isinstance(exc, requests.exceptions.RequestException | ValueError):
        return GitHubError(f"bad answer from GitHub for {what}: {type(exc).__name__}")
    raise exc


def _shown_url(url: str) -> str:
    """``url`` without its query and without a default port (``https://api.github.com/repos/o/r``)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _is_loopback(api_url: str) -> bool:
    host = urlsplit(api_url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"].splitlines()[0][:200] if data["message"] else "no message"
    return "no message"


def _status_of(text: str) -> str:
    marker = "too many "
    start = text.find(marker)
    if start < 0:
        return "server errors"
    return text[start : text.find(")", start)].rstrip("'\"") if ")" in text[start:] else text[start:]


__all__ = [
    "GitHubError",
    "MeteredRetry",
    "RateLimited",
    "RequestMeter",
    "connect",
    "describe_failure",
    "get_json",
    "next_link",
    "paginate",
    "post_graphql",
    "request_meter",
]
