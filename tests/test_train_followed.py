"""Training in a child process, followed by the parent: step records arrive, lineage reaches MLflow, and a
child killed after its first checkpoint is resumed from that checkpoint, not from step 0."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
import yaml

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
from swerl_core.runs import finished_runs, last_checkpoint, run_checkpoints, unchanged_since_training
from swerl_core.train.followed import train_followed
from swerl_core.train.job import TrainJob, TrainStep


def _recipe(tmp_path: Path, model_dir: Path, max_steps: int) -> Path:
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
    return path


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(settings: Settings, model_dir: Path, tmp_path: Path) -> None:
    job = TrainJob(
        _recipe(tmp_path, model_dir, 3),
        "grpo",
        SAMPLE_SNAPSHOT_ID,
        f"followed-grpo-{SAMPLE_SNAPSHOT_ID}-20260101-000000",
    )
    run_dir = settings.checkpoints_dir / job.run_name
    steps: list[TrainStep] = []
    killed: list[int] = []

    def kill_once(step: TrainStep) -> None:
        steps.append(step)
        if killed or last_checkpoint(run_dir) is None:
            return
        (child,) = [c for c in psutil.Process().children() if "swerl_core.train.followed" in c.cmdline()]
        os.kill(child.pid, signal.SIGKILL)
        killed.append(child.pid)

    run = train_followed(settings, job, on_step=kill_once)
    assert killed, "the child was never killed: no checkpoint appeared while it trained"
    assert run.restarts == 1 and run.resumed_from_steps[0] >= 1
    assert run.steps == 3 and (run.model_dir / "config.json").is_file()
    assert [s.total for s in steps] == [3] * len(steps)
    assert [p.name for p in run_checkpoints(run_dir)] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


@pytest.mark.slow
def test_finished_run_marks_snapshot_as_trained_and_logs_lineage(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    assert unchanged_since_training(settings.checkpoints_dir, "followed", SAMPLE_SNAPSHOT_ID) is None
    job = TrainJob(
        _recipe(tmp_path, model_dir, 1),
        "grpo",
        SAMPLE_SNAPSHOT_ID,
        f"followed-grpo-{SAMPLE_SNAPSHOT_ID}-20260101-000001",
    )
    run = train_followed(settings, job)
    assert [r.name for r in finished_runs(settings.checkpoints_dir, "followed")] == [job.run_name]
    trained = unchanged_since_training(settings.checkpoints_dir, "followed", SAMPLE_SNAPSHOT_ID)
    assert trained is not None and trained.snapshot_id == SAMPLE_SNAPSHOT_ID
    assert unchanged_since_training(settings.checkpoints_dir, "followed", "another-snapshot") is None
    inputs = MlflowClient(settings.tracking_uri).get_run(run.mlflow_run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == [f"{SAMPLE_SNAPSHOT_ID}/train"]
    assert len(inputs[0].dataset.digest) == 32
