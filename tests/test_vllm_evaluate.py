"""Evaluation through vLLM on a CPU: the ``vllm`` backend, an engine started in the evaluating process, on the
learnable world's model shape (head size 32, which vLLM's CPU kernels take) over the sample snapshot's held-out split.
It checks the engine, not a flag: its greedy answers are the transformers backend's (the same weights; vLLM's eager
CPU kernels round within 10⁻⁶ of them). The ``endpoint`` backend is tested against the rollout server that
tests/test_vllm_server.py starts (one server start for both).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from swerl_core.config import Settings, load_settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.heavy(100)]

INSTANCES = 4
SERVER_START_S = 300  # about 50 s on 2 idle cores


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from swerl_core.demo.tiny_model import LEARNABLE_SPEC, init_tiny_model

    return init_tiny_model(tmp_path_factory.mktemp("models") / "learnable-shape", LEARNABLE_SPEC)


def _settings(home: Path, **evaluate: object) -> Settings:
    write_sample_snapshot(home)
    overrides = {"evaluate.limit": INSTANCES, "evaluate.max_new_tokens": 24, "evaluate.lineage": False}
    overrides |= {f"evaluate.{key}": value for key, value in evaluate.items()}
    return load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"}, overrides=overrides)


def _predictions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_vllm_backend_answers_as_the_same_weights_do_in_transformers_and_stops_its_engine(
    model: Path, tmp_path: Path
) -> None:
    from swerl_core import evaluate

    runs = {}
    for backend in ("vllm", "transformers"):
        settings = _settings(tmp_path / backend, backend=backend)
        runs[backend] = evaluate.run(settings, evaluate.EvaluateRequest(str(model), SAMPLE_SNAPSHOT_ID))
    engine, reference = runs["vllm"], runs["transformers"]
    assert (engine.backend, engine.metrics.n_instances) == ("vllm", INSTANCES)
    answers = {p["instance_id"]: p["raw_output"] for p in _predictions(engine.predictions_path)}
    expected = {p["instance_id"]: p["raw_output"] for p in _predictions(reference.predictions_path)}
    assert answers == expected and all(answers.values()), (answers, expected)
    assert engine.metrics.tokens_generated == reference.metrics.tokens_generated > 0
    # The engine stopped with its evaluation, and its process was reaped: nothing of it is left, not even a zombie.
    left = [child.name() for child in psutil.Process().children(recursive=True)]
    assert not [name for name in left if "EngineCore" in name], left


def test_a_stop_while_the_engine_starts_stops_the_evaluation_once_the_engine_is_up(model: Path, tmp_path: Path) -> None:
    # vLLM swallows a KeyboardInterrupt during its engine's start-up handshake: a SIGTERM sent then was lost, and the
    # evaluation ran to the end (exit 0) or waited out vLLM's start-up timeout. Held until the engine is up, it stops.
    home = tmp_path / "home"
    write_sample_snapshot(home)
    log = tmp_path / "evaluate.log"
    command = [sys.executable, "-m", "swerl_core.cli", "evaluate", "--model", str(model), "--snapshot",
               SAMPLE_SNAPSHOT_ID, "--backend", "vllm"]  # fmt: skip
    env = {**os.environ, "SWERL_HOME": str(home), "VLLM_ENGINE_READY_TIMEOUT_S": "600"}
    with log.open("w") as out:
        evaluating = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not (engines := _engine_processes(evaluating.pid)):  # the engine process runs: its start-up
            assert evaluating.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        evaluating.send_signal(signal.SIGTERM)
        assert evaluating.wait(timeout=SERVER_START_S) == 143, log.read_text()[-3000:]
    finally:
        evaluating.kill()
    lines = log.read_text().rstrip().splitlines()
    # The resource tracker vLLM's processes started shares the log and may warn of leaked shared memory after swerl's
    # last line (its own process, its own time): that is not swerl's output.
    while lines and ("resource_tracker" in lines[-1] or lines[-1].lstrip().startswith("warnings.warn(")):
        lines.pop()
    assert lines and lines[-1] == "swerl evaluate: interrupted (SIGTERM)", lines[-5:]
    assert "Traceback" not in log.read_text()
    if (home / "swerl.duckdb").exists():  # a stopped evaluation leaves no row (the database may not even exist yet)
        from swerl_core.store import Store

        with Store.open(home / "swerl.duckdb", read_only=True) as store, store.reading() as con:
            assert con.execute("SELECT count(*) FROM evaluations").fetchall() == [(0,)], "a stopped one left a row"
    _, alive = psutil.wait_procs(engines, timeout=60)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "the engine outlived the stopped evaluation"


def _engine_processes(pid: int) -> list[psutil.Process]:
    """The vLLM engine processes under ``pid`` (vLLM names them ``VLLM::EngineCore``)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "EngineCore" in child.name() or "EngineCore" in " ".join(child.cmdline()):
                found.append(child)
    return found
