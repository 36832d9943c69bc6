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


def _as_from_a_terminal() -> None:
    """Give the child SIGHUP and SIGINT at their defaults, as a command started from a terminal has them. A suite run
    under nohup hands on SIGHUP ignored, and one run in the background by a shell SIGINT ignored; swerl keeps an
    ignored signal ignored (as nohup and a background job want), so the tests must not inherit them."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _write_recipe(settings: Settings, model_dir: Path) -> Path:
    """A recipe of run ``stopped`` on the tiny model: 500 steps, a checkpoint each (it trains until stopped)."""
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
    return path


def _start_training(settings: Settings, model_dir: Path, how: str) -> subprocess.Popen[str]:
    path = _write_recipe(settings, model_dir)
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
        preexec_fn=_as_from_a_terminal,
    )


def _wait_for_a_checkpoint(proc: subprocess.Popen[str], run_dir: Path) -> None:
    """Until the training ``proc`` runs has saved checkpoint-1 (it is then inside its training loop)."""
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-1" / "trainer_state.json").is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint-1 within 300 s"
        time.sleep(0.1)


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
        _wait_for_a_checkpoint(proc, run_dir)
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


class _SignalsWhenCollected:
    def __del__(self) -> None:
        _signal_self(signal.SIGTERM)  # the handler runs inside this finalizer, where a raise would be dropped


def test_a_stop_that_lands_in_a_finalizer_still_stops() -> None:
    # Measured with vLLM: a SIGTERM during its engine start ran the handler inside a garbage-collected object's
    # __del__; Python dropped the Interrupted, and the handlers, already set to ignore, kept every later one out.
    with pytest.raises(Interrupted) as stopped, interruptible():
        _SignalsWhenCollected()  # collected at once: __del__ runs here
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert stopped.value.signum == signal.SIGTERM


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


@pytest.mark.slow
def test_a_deleted_training_pod_marks_its_mlflow_run_killed_and_leaves_no_trainer(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    """Deleting a pod makes the kubelet send SIGTERM to the container's first process: torchrun, which the rendered
    Job runs around the followed trainer. The same command, run here, is stopped the same way."""
    from mlflow import MlflowClient

    from swerl_core.train.config import train_config_dict, train_config_from_dict
    from swerl_core.train.distributed import free_port
    from swerl_core.train.k8s.layout import ClusterLayout, cluster_recipe
    from swerl_core.train.k8s.manifests import torchrun_command

    layout = ClusterLayout(nodes=1, gpus_per_node=1, run_name="deleted")
    cfg = cluster_recipe(train_config_from_dict(yaml.safe_load(_write_recipe(settings, model_dir).read_text())), layout)
    recipe = tmp_path / "recipe.yaml"  # the pod's /etc/swerl/recipe.yaml (its ConfigMap)
    recipe.write_text(yaml.safe_dump(train_config_dict(cfg)), encoding="utf-8")
    command = torchrun_command(cfg, layout)
    command = [f"--rdzv-endpoint=127.0.0.1:{free_port()}" if a.startswith("--rdzv-endpoint") else a for a in command]
    command = [str(recipe) if a == "/etc/swerl/recipe.yaml" else a for a in command]
    pod = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *command[1:]],
        cwd=REPO,
        env={**os.environ, "SWERL_HOME": str(settings.home)},  # the pods read their settings from the environment
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run_dir = settings.checkpoints_dir / "deleted"
    try:
        _wait_for_a_checkpoint(pod, run_dir)
        trainers = _trainers(pod.pid)
        assert len(trainers) == 1, trainers
        os.kill(pod.pid, signal.SIGTERM)  # the kubelet, on `kubectl delete pod`
        out, _ = pod.communicate(timeout=120)
    finally:
        if pod.poll() is None:
            os.killpg(pod.pid, signal.SIGKILL)
    assert pod.returncode != 0 and "interrupted (SIGTERM)" in out, out[-3000:]
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in trainers), "a trainer outlived it"
    run = MlflowClient(settings.tracking_uri).get_run((run_dir / "mlflow_run_id").read_text().strip())
    assert run.info.status == "KILLED" and not (run_dir / "final").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("verb", "signum"),
    [
        ("evaluate", signal.SIGTERM),
        ("evaluate", signal.SIGINT),
        ("evaluate", signal.SIGHUP),
        ("register", signal.SIGTERM),
    ],
    ids=["evaluate-SIGTERM", "evaluate-SIGINT", "evaluate-SIGHUP", "register-SIGTERM"],
)
def test_a_stopped_evaluation_says_so_in_one_line_and_records_nothing(
    settings: Settings, model_dir: Path, verb: str, signum: signal.Signals
) -> None:
    from swerl_core.store import Store

    env = {
        **os.environ,
        "SWERL_HOME": str(settings.home),
        "SWERL_EVALUATE__SAMPLES": "8",
        "SWERL_EVALUATE__MAX_NEW_TOKENS": "1024",
    }  # fmt: skip  (long enough to be stopped midway)
    command = ["-m", "swerl_core.cli", verb, "--model", str(model_dir), "--snapshot", SAMPLE_SNAPSHOT_ID]
    proc = subprocess.Popen(
        [sys.executable, *command], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_as_from_a_terminal,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        while not any(line.startswith("evaluating ") for line in seen):  # generation has started
            line = proc.stderr.readline()
            assert line, f"the evaluation ended before it was stopped: {seen}"
            seen.append(line)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 128 + signum and last.startswith(f"swerl {verb}: interrupted"), (proc.returncode, err)
    assert "Traceback" not in err
    database = settings.home / "swerl.duckdb"
    if database.exists():  # a stopped evaluation leaves no row (the database may not even exist yet)
        with Store.open(database, read_only=True) as store, store.reading() as con:
            assert con.execute("SELECT count(*) FROM evaluations").fetchall() == [(0,)], "a stopped one left a row"
