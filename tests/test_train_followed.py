"""Training through the local launcher (``train.launcher: local``): the child process gets the effective recipe,
its step metrics arrive as numbers in progress records, lineage reaches MLflow, and a child killed after its first
checkpoint is resumed from that checkpoint, not from step 0 — one result record either way."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
import yaml

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
from swerl_core.progress import Progress
from swerl_core.runs import finished_runs, last_checkpoint, run_checkpoints, unchanged_since_training
from swerl_core.train import TrainRequest, run
from swerl_core.train.config import TrainConfig, load_train_config


def _recipe(tmp_path: Path, model_dir: Path, max_steps: int) -> TrainConfig:
    """The recipe as the caller read it; its file is gone afterwards, so a child reading the path would fail."""
    recipe = {
        "name": "followed",
        "base_model": str(model_dir),
        "max_prompt_length": 1024,
        "max_completion_length": 48,
        "grpo": {"prompts_per_step": 2, "num_generations": 2, "per_device_batch_size": 4,
                 "max_steps": max_steps, "save_steps": 1},
    }  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    cfg = load_train_config(path)
    path.unlink()
    return cfg


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(settings: Settings, model_dir: Path, tmp_path: Path) -> None:
    assert settings.train.launcher == "local"
    name = f"followed-grpo-{SAMPLE_SNAPSHOT_ID}-20260101-000000"
    request = TrainRequest(_recipe(tmp_path, model_dir, 3), "grpo", SAMPLE_SNAPSHOT_ID, run_name=name)
    run_dir = settings.checkpoints_dir / name
    steps: list[Progress] = []
    killed: list[int] = []

    def kill_once(event: Progress) -> None:
        if not event.metrics:
            return
        steps.append(event)
        if killed or last_checkpoint(run_dir) is None:
            return
        alive = [c for c in psutil.Process().children() if c.status() != psutil.STATUS_ZOMBIE]
        (child,) = [c for c in alive if "swerl_core.train.followed" in c.cmdline()]  # not an earlier test's
        os.kill(child.pid, signal.SIGKILL)
        killed.append(child.pid)

    result = run(settings, request, kill_once)
    assert killed, "the child was never killed: no checkpoint appeared while it trained"
    assert result.restarts == 1 and len(result.resumed_from_steps) == 1 and result.resumed_from_steps[0] >= 1
    assert result.steps == 3 and (result.model_dir / "config.json").is_file()
    assert [s.total for s in steps] == [3] * len(steps)
    assert all(isinstance(s.metrics["reward"], float) for s in steps), steps
    assert [p.name for p in run_checkpoints(run_dir)] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


@pytest.mark.slow
def test_finished_run_marks_snapshot_as_trained_and_logs_lineage(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    assert unchanged_since_training(settings.checkpoints_dir, "followed", SAMPLE_SNAPSHOT_ID) is None
    name = f"followed-grpo-{SAMPLE_SNAPSHOT_ID}-20260101-000001"
    result = run(settings, TrainRequest(_recipe(tmp_path, model_dir, 1), "grpo", SAMPLE_SNAPSHOT_ID, run_name=name))
    assert (result.run_name, result.restarts, result.resumed_from_steps) == (name, 0, ())
    assert [r.name for r in finished_runs(settings.checkpoints_dir, "followed")] == [name]
    trained = unchanged_since_training(settings.checkpoints_dir, "followed", SAMPLE_SNAPSHOT_ID)
    assert trained is not None and trained.snapshot_id == SAMPLE_SNAPSHOT_ID and trained.path == result.checkpoint_dir
    assert unchanged_since_training(settings.checkpoints_dir, "followed", "another-snapshot") is None
    training = MlflowClient(settings.tracking_uri).get_run(result.mlflow_run_id)
    inputs = training.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == [f"{SAMPLE_SNAPSHOT_ID}/train"]
    assert len(inputs[0].dataset.digest) == 32
    # The child trained with the caller's settings (the launcher's own, as the effective settings it ran with).
    assert training.data.params["settings.home"] == str(settings.home)
    assert training.data.params["settings.train.launcher"] == "in_process"
