"""A rollout server for tests: it speaks the routes swerl's rollout client and TRL's GRPO trainer use (``/health``,
``/v1/models``, ``/server_info``, ``/v1/completions``, ``/collective_rpc``, ``/reset_prefix_cache``), answers what a
test sets, and can die mid-run like a killed server.

Its completions are two fixed tokens with log-probabilities: enough for TRL's GRPO to run whole steps through it
without vLLM. A real vLLM server is exercised in ``test_vllm_server.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeRolloutServer(ThreadingHTTPServer):
    """A rollout server whose answers a test sets: ``mode`` is ok, hang, garbage, short, html or error."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.confirm: object = None  # what /collective_rpc answers; None: the version and nonce asked for
        self.served: object = None  # what swerl_weights_version answers: the last version confirmed
        self.released = threading.Event()
        self.dead = False
        self.die_at_version: int | None = None  # asked to load this weights version, the server dies instead
        self.loaded: list[int] = []  # the weights versions it confirmed, in order

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def die(self) -> None:
        """From now on close every connection without an answer, as a killed server's port does."""
        self.dead = True


class _Handler(BaseHTTPRequestHandler):
    server: FakeRolloutServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.server.dead:
            return
        if self.path == "/health":
            self._send(200, "")
        elif self.path == "/v1/models":
            self._send(200, json.dumps({"data": [{"id": "policy"}]}))
        elif self.path.startswith("/server_info"):  # what TRL's GRPO trainer reads at its start
            self._send(200, json.dumps({"vllm_config": {"model_config": {"logprobs_mode": "processed_logprobs"}}}))
        else:
            self._send(404, "{}")

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        mode = self.server.mode
        if self.server.dead:
            return
        if mode == "hang":
            self.server.released.wait(30)
            return
        if mode == "error":
            self._send(500, json.dumps({"error": "engine dead"}))
        elif mode == "html":
            self._send(200, "<html>proxy error</html>", "text/html")
        elif self.path == "/reset_prefix_cache":  # after each weight sync
            self._send(200, "{}")
        elif self.path == "/collective_rpc" and body.get("method") == "swerl_weights_version":
            self._send(200, json.dumps({"results": [self.server.served]}))
        elif self.path == "/collective_rpc":
            self._load(body.get("kwargs", {}))
        elif mode == "garbage":
            self._send(200, json.dumps({"choices": [{"text": "no token ids here"}]}))
        else:
            n = 1 if mode == "short" else body["n"]
            choice = {
                "prompt_token_ids": body["prompt"][0],
                "token_ids": [7, 8],
                "logprobs": {"tokens": ["token_id:7", "token_id:8"], "token_logprobs": [-1.0, -2.0],
                             "top_logprobs": [{}, {}]},
            }  # fmt: skip
            self._send(200, json.dumps({"choices": [choice] * (len(body["prompt"]) * n)}))

    def _load(self, kwargs: dict) -> None:
        version = int(kwargs["version"])
        if version == self.server.die_at_version:
            self.server.die()  # as a killed server: this request and every later one gets no answer
            return
        manifest = Path(kwargs["path"]) / "weights.json"  # a version the trainer wrote: confirm its nonce
        nonce = json.loads(manifest.read_text())["nonce"] if manifest.is_file() else Path(kwargs["path"]).name
        asked = self.server.confirm or {"version": version, "nonce": nonce}
        self.server.loaded.append(version)
        self.server.served = asked
        self._send(200, json.dumps({"results": [asked]}))


@contextmanager
def serving() -> Iterator[FakeRolloutServer]:
    """A :class:`FakeRolloutServer` serving in a thread for the enclosed block."""
    server = FakeRolloutServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
