"""The registry against a real `mlflow server` process on 127.0.0.1 (sqlite backend, local artifact root)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from eval_world import make_settings
from mlflow_server import mlflow_server

from swerl_core.registry.aliases import CHAMPION, alias_version
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import promote_version, register
from swerl_core.registry.versions import mlflow_client, resolve_model


@pytest.mark.slow
def test_register_promote_and_load_through_a_tracking_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path) as url:
        home = tmp_path / "home"
        settings = make_settings(home, **{"mlflow_tracking_uri": url, "registry.model_name": "served"})
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
        (ckpt / "config.json").write_text(json.dumps({"model_type": "llama"}))
        result = register(settings, ckpt, GateMetrics("s1", 1, 0.4, 0.0, "p1"), {"mean_reward": 0.4}, who="ci")
        promote_version(settings, result.version, "ci", "first release")
        client = mlflow_client(url)
        assert alias_version(client, "served", CHAMPION) == result.version
        local = resolve_model(client, "models:/served@champion", tmp_path / "cache").local_dir
        assert json.loads((local / "config.json").read_text()) == {"model_type": "llama"}


@pytest.mark.slow
def test_a_tracking_server_that_never_answers_is_reported_within_15_seconds_saying_so_while_it_retries(
    tmp_path: Path,
) -> None:
    import socket
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers a byte
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "swerl"), "--home", str(home), "models"],
            env={**env, "MLFLOW_TRACKING_URI": url}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines[-1].startswith(f"swerl models: cannot reach MLflow at {url} ("), lines
    assert any("does not answer" in line and "trying again" in line for line in lines[:-1]), "no word while retrying"
    tried = re.search(r"(\d+) tries in (\d+) s\)", lines[-1])
    assert tried is not None and int(tried[1]) >= 2 and int(tried[2]) <= 15, lines[-1]  # as the process timed it


@pytest.mark.parametrize(("status", "reached"), [(502, False), (500, False), (401, True), (404, True)])
def test_a_proxy_answering_for_a_dead_server_is_not_taken_for_mlflow(
    status: int, reached: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from swerl_core.errors import ModelError
    from swerl_core.models import wait_for_server

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://user:secret@127.0.0.1:{server.server_address[1]}/mlflow"
    try:
        if reached:
            wait_for_server(url)  # an auth wall or a missing /health: something answers there
        else:
            with pytest.raises(
                ModelError, match=rf"cannot reach MLflow at http://127.0.0.1:\d+/mlflow \(HTTP {status}"
            ) as err:
                wait_for_server(url)
            assert "secret" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
