"""SIGTERM and SIGHUP (what ``timeout``, Prefect's cancellation, a Kubernetes pod deletion and a closed terminal send)
stop a verb as Ctrl-C does: one line saying so, exit status 128 + the signal, the training's MLflow run KILLED and
its trainer process gone, never left training on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
from swerl_core.interrupts import Interrupted, deferred, interruptible

REPO = Path(__file__).resolve().parent.parent


# A program that trains through the local launcher (a child trainer process), as a Prefect flow run's process does.
LAUNCHER = """
import sys
from swerl_core.config import load_settings
from swerl_core.train import TrainRequest, run
from swerl_core.train.config import load_train_config
run(load_settings(), TrainRequest(load_train_config(sys.argv[1]), "grpo", run_name="stopped"))
"""


def _start_training(settings: Settings, model_dir: Path, how: str) -> subprocess.Popen[str]:
    recipe = {
        "name": "stopped",
        "base_model": str(model_dir),
        "snapshot": SAMPLE_SNAPSHOT_ID,
        "max_prompt_length": 1024,
        "max_completion_length": 48,
        "grpo": {"prompts_per_step": 2, "num_generations": 2, "per_device_batch_size": 4,
                 "max_steps": 500, "save_steps": 1},
    }  # fmt: skip
    path = settings.home / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    if how == "swerl train":  # the CLI trains in its own process
        cmd = ["-m", "swerl_core.cli", "train", "--recipe", str(path), "--run-name", "stopped"]
    else:
        cmd = ["-c", LAUNCHER, str(path)]
    return subprocess.Popen(
        [sys.executable, *cmd],
        cwd=REPO,
        env={**os.environ, "SWERL_HOME": str(settings.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal or a scheduler gives it
        # A terminal's process starts with SIGHUP at its default; a test run under nohup would hand on "ignored",
        # which the trainer keeps (as nohup wants).
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )


def _trainers(launcher: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(launcher).children(recursive=True) if "swerl_core.train.followed" in p.cmdline()]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "signum", "whole_group"),
    [("swerl train", signal.SIGHUP, True), ("local launcher", signal.SIGTERM, False)],
    ids=["swerl-train-sighup-to-its-group", "launcher-sigterm-to-it-alone"],
)
def test_a_stopped_training_closes_its_mlflow_run_and_leaves_no_trainer(
    settings: Settings, model_dir: Path, how: str, signum: signal.Signals, whole_group: bool
) -> None:
    from mlflow import MlflowClient

    run_dir = settings.checkpoints_dir / "stopped"
    proc = _start_training(settings, model_dir, how)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "checkpoint-1" / "trainer_state.json").is_file():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint-1 within 300 s"
            time.sleep(0.1)
        trainers = _trainers(proc.pid)
        assert len(trainers) == (0 if how == "swerl train" else 1), trainers
        if whole_group:
            os.killpg(proc.pid, signum)  # a closed terminal signals every process of its session
        else:
            os.kill(proc.pid, signum)  # the launcher alone, as `timeout`, Prefect and Kubernetes signal it
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how == "swerl train":
        assert proc.returncode == 128 + signum, err
        assert err.strip().splitlines()[-1] == f"swerl train: interrupted ({signum.name})", err
        assert "Traceback" not in err
    else:
        assert proc.returncode != 0 and f"Interrupted: {signum.name}" in err, err
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in trainers), "a trainer outlived it"
    run = MlflowClient(settings.tracking_uri).get_run((run_dir / "mlflow_run_id").read_text().strip())
    assert run.info.status == "KILLED"
    assert not (run_dir / "final").exists()


def _signal_self(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.2)  # Python runs the handler between bytecodes of the main thread, soon after delivery


def test_a_stop_signal_raises_once_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped, interruptible():
        try:
            _signal_self(signal.SIGTERM)
        finally:
            _signal_self(signal.SIGTERM)  # a scheduler's second SIGTERM must not cut the cleanup short
    assert stopped.value.exit_code == 143 and str(stopped.value) == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_hangup_ignored_on_entry_stays_ignored_as_nohup_wants() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interruptible():
            _signal_self(signal.SIGHUP)  # would raise Interrupted if the block armed SIGHUP
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_inner_block_does_not_rearm_the_outer_cleanup() -> None:
    with pytest.raises(Interrupted), interruptible():
        try:
            with interruptible():
                _signal_self(signal.SIGTERM)
        finally:
            _signal_self(signal.SIGTERM)  # ignored: the outer block's cleanup is running


def test_a_deferred_step_finishes_whole_then_the_stop_acts() -> None:
    done = []
    with pytest.raises(Interrupted), interruptible(), deferred():
        _signal_self(signal.SIGTERM)
        done.append("closed")
    assert done == ["closed"]
    # Inside a stop already being handled, a held signal does not replace it.
    with pytest.raises(KeyError), interruptible():
        try:
            raise KeyError("the first failure")
        finally:
            with deferred():
                _signal_self(signal.SIGINT)
