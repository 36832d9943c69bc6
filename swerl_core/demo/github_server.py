"""A GitHub-compatible REST v3 server (plus a sliver of GraphQL) on 127.0.0.1, for tests and the demo.

This module owns the server: its lifecycle, token auth, rate-limit accounting, scripted faults and the request
log. Routing and pagination with RFC 5988 ``Link`` headers live in :mod:`~swerl_core.demo.github_routes`, GitHub's
JSON shapes, diffs and indexes in :mod:`~swerl_core.demo.github_resources`, faults and rate budgets in
:mod:`~swerl_core.demo.github_faults`. It serves the records of a :class:`~swerl_core.demo.world.World` (or a list
of :class:`~swerl_core.demo.world.RepoData`) and reads git only to compute pull-request diffs. It never stores or
logs the token (only its SHA-256 digest is kept), never listens beyond 127.0.0.1 and runs on the standard library
alone.

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

import contextlib
import hashlib
import hmac
import re
import signal
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from swerl_core.demo.github_faults import SECONDARY_LIMIT_MESSAGE, Fault, RateBudget, RequestRecord
from swerl_core.demo.github_routes import DOCS, Request, Response, RestApi
from swerl_core.demo.world import (
    Account,
    DemoError,
    RepoData,
    World,
)

__all__ = ["Fault", "FakeGitHub", "RequestRecord"]


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
        self._budgets: dict[tuple[str, str], RateBudget] = {}
        self.max_diff_files = max_diff_files
        self.viewer = Account(login, 1, name="swerl bot")
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []
        self._hidden: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._api: RestApi | None = None
        self.url = ""

    # lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._api = RestApi(self._repos, self.url, self.viewer, self.max_diff_files, self._hidden)
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

    def serve_until_signalled(self) -> None:
        """Keep serving until SIGTERM or SIGINT (``kill``, Ctrl-C), then return; call it from the main thread.

        Either signal raises ``KeyboardInterrupt`` where the main thread sleeps. A handler that set an Event the
        main thread waits on could deadlock on the lock that wait holds, and the server would outlive ``kill``.
        """
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)

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

    def _record(self, request: Request, status: int) -> None:
        with self._lock:
            self._log.append(RequestRecord(request.method, request.path, request.raw_query, status))

    # answering ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request (faults first, then auth, rate limit and routing) and log it."""
        response = self._respond(request)
        self._record(request, response.status)
        return response

    def _respond(self, request: Request) -> Response:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.kind == "reset":
                return Response(0, reset=True)
            if fault.kind == "delay":
                self._stopping.wait(fault.delay_s)
            if fault.status is not None:
                return self._fault_response(fault)
        identity = self._identify(request.headers)
        if identity is None:
            return self._with_rate(Response.error(401, "Bad credentials"), "anonymous", "core")
        if request.path == "/rate_limit":
            return self._with_rate(self._rate_limit(identity), identity, "core")
        resource = "graphql" if request.path == "/graphql" else "core"
        with self._lock:
            allowed = self._budget(identity, resource).take()
        if not allowed:
            message = f"API rate limit exceeded for user ID {self.viewer.id}."
            return self._with_rate(Response.error(403, message), identity, resource)
        return self._with_rate(self._route(request, identity), identity, resource)

    def _route(self, request: Request, identity: str) -> Response:
        assert self._api is not None
        try:
            return self._api.route(request, identity)
        except ValueError as exc:
            return Response.error(422, "Validation Failed", errors=[{"message": str(exc)}])
        except DemoError as exc:
            return Response.error(500, f"Server Error: {exc}")

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(request.method, request.path)), None)
            if fault is not None:
                fault.times -= 1
                self._faults = [f for f in self._faults if f.times > 0]
        return fault

    def _fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        body = fault.body if fault.body is not None else {"message": HTTPStatus(status).phrase}
        if isinstance(body, str | bytes):
            raw = body.encode() if isinstance(body, str) else body
            response = Response(status, raw, {"Content-Type": "text/plain; charset=utf-8"})
        else:
            response = Response.json(status, body)
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

    def _budget(self, identity: str, resource: str) -> RateBudget:
        key = (identity, resource)
        if key not in self._budgets:
            limit = self._anonymous_limit if identity == "anonymous" else self._limits.get(resource, 5000)
            self._budgets[key] = RateBudget(limit, self._window)
        return self._budgets[key]

    def _with_rate(self, response: Response, identity: str, resource: str) -> Response:
        with self._lock:
            rate = self._budget(identity, resource).headers(resource)
        response.headers = {**rate, "X-GitHub-Media-Type": "github.v3; format=json", **response.headers}
        return response

    def _rate_limit(self, identity: str) -> Response:
        with self._lock:
            resources = {name: self._budget(identity, name).snapshot() for name in ("core", "graphql", "search")}
        return Response.json(200, {"resources": resources, "rate": resources["core"]})


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
        """Answer any method the same way: :class:`RestApi` decides."""
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        response = self.server.app.handle(Request(self.command, parts.path, parts.query, query, self.headers, body))
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
