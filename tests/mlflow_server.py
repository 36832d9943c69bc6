"""A real ``mlflow server`` process on 127.0.0.1 for tests and benchmarks (sqlite backend, local artifact root), a
checkpoint of a training run it knows, and a fault proxy in front of it that acts on one chosen request: kills the
client right after the server has done it, or answers 500 once after the server has done it (so that the client's
retry repeats it)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, server: subprocess.Popen, seconds: float, log: Callable[[], str]) -> None:
    """Wait until ``url``/health answers 200 while ``server`` runs; fail with the tail of its ``log()`` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert server.poll() is None, f"the server at {url} exited: {log()}"
        assert time.monotonic() < deadline, f"no healthy server at {url} within {seconds:g} s: {log()}"
        time.sleep(0.5)


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """Start ``mlflow server`` with its data under ``root``; yields its URL, stops it (its process group) after."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
               "--default-artifact-root", str(root / "server-artifacts"), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, 90, lambda: server.stderr.read().decode()[-2000:] if server.stderr else "")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def training_checkpoint(root: Path, url: str, run: str) -> Path:
    """A checkpoint ``root/checkpoints/<run>/final`` of a training run ``run`` the tracking server at ``url`` knows
    (what a registration keys on), with a config and 64 bytes of weights."""
    from mlflow import MlflowClient

    from swerl_core.runs import write_run_id

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("train") or client.get_experiment(client.create_experiment("train"))
    run_id = client.create_run(experiment.experiment_id, run_name=run).info.run_id
    path = root / "checkpoints" / run / "final"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"_name_or_path": "base/tiny-llama", "model_type": "llama"}))
    (path / "model.safetensors").write_bytes(b"\0" * 64)
    write_run_id(path.parent, run_id)
    return path


Match = Callable[[str, str, bytes], bool]  # method, path, body


@dataclass
class Fault:
    """What the proxy does to the first request ``match`` accepts: ``kill`` the process ``pid()`` names once the
    server has answered (the client never hears), or answer ``500`` instead of the server's answer."""

    match: Match
    action: str  # "kill" | "500"
    pid: Callable[[], int] = lambda: 0
    fired: threading.Event = field(default_factory=threading.Event)


@contextmanager
def fault_proxy(upstream: str, fault: Fault | None = None) -> Iterator[str]:
    """An HTTP proxy to ``upstream`` on 127.0.0.1 that applies ``fault`` once; yields its URL."""
    target = upstream.removeprefix("http://")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            upstream_conn = http.client.HTTPConnection(target, timeout=60)
            upstream_conn.request(self.command, self.path, body=body, headers=headers)
            answer = upstream_conn.getresponse()
            data = answer.read()
            upstream_conn.close()
            with lock:
                hit = fault is not None and not fault.fired.is_set() and fault.match(self.command, self.path, body)
                if hit:
                    fault.fired.set()
            if hit and fault.action == "kill":
                os.kill(fault.pid(), signal.SIGKILL)  # after the server acted, before the client hears of it
                self.close_connection = True
                return
            status, data = (500, b'{"error_code": "INTERNAL_ERROR", "message": "injected"}') if hit else (
                answer.status, data)  # fmt: skip
            self.send_response(status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
