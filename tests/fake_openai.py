"""A small OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 for tests (evaluation, LLM ranker)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    """``/v1/chat/completions`` on 127.0.0.1: ``answer(messages, k)``, after ``fail_first`` 503s or with a status."""

    def __init__(self, answer: Any, fail_first: int = 0, status: int = 200, delay_s: float = 0.0) -> None:
        self.answer, self.fail_first, self.status, self.delay_s = answer, fail_first, status, delay_s
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                    failing = len(fake.requests) <= fake.fail_first
                time.sleep(fake.delay_s)
                code = 503 if failing else fake.status
                if code != 200:
                    self.send_response(code)
                    self.end_headers()
                    return
                choices = [
                    {"index": k, "message": {"role": "assistant", "content": fake.answer(body["messages"], k)}}
                    for k in range(body.get("n", 1))
                ]
                data = json.dumps({"choices": choices, "usage": {"completion_tokens": 11 * body.get("n", 1)}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
