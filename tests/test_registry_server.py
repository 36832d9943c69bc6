"""The registry against a real `mlflow server` process on 127.0.0.1 (sqlite backend, local artifact root)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from eval_world import make_settings

from swerl_core.registry.aliases import CHAMPION, alias_version
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import promote_version, register
from swerl_core.registry.versions import mlflow_client, resolve_model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_register_promote_and_load_through_a_tracking_server(tmp_path: Path) -> None:
    port = _free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else "server died"
            assert time.monotonic() < deadline, "mlflow server not healthy within 90 s"
            time.sleep(0.5)
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
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
