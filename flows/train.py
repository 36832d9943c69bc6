"""The ``train`` flow: an optional SFT warm start, then GRPO, each in its own process that the flow follows.

``train.launcher`` chooses where a stage runs: a local child process (one that dies is resumed from its last
checkpoint) or a Kubernetes Job (``train.kubernetes.*``) whose state changes and pod log lines reach this flow
run's log, and whose failure reason fails it (``swerl_core.train.launcher.train_launched``). The
flow publishes a progress artifact updated at every step, a link to the MLflow run, and the reward
curve as an image served by the MLflow server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from flows.bridge import artifact_key, flow_settings, mlflow_artifact_url, mlflow_run_url, swerl_logs
from swerl_core.train.config import Stage, load_train_config
from swerl_core.train.job import FollowedRun, TrainStep, job_for
from swerl_core.train.launcher import train_launched


@dataclass(frozen=True)
class TrainOutcome:
    """The trained run (GRPO) and, when there was one, its SFT warm start."""

    recipe: str
    snapshot_id: str
    grpo: FollowedRun
    sft: FollowedRun | None


@task(name="run-training")
def run_training(recipe: str, stage: Stage, snapshot_id: str, base_model: str | None = None) -> FollowedRun:
    """Train one stage where the settings say (child process or Kubernetes Job), updating a progress artifact."""
    job = job_for(Path(recipe), stage, snapshot_id, base_model)
    progress = create_progress_artifact(0.0, key=artifact_key("training-progress", stage), description=job.run_name)

    def on_step(step: TrainStep) -> None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(step.metrics.items()) if k in ("reward", "loss"))
        done = 100.0 * step.step / step.total if step.total else 0.0
        update_progress_artifact(progress, min(done, 100.0), description=f"{job.run_name} step {step.step} {shown}")

    run = train_launched(flow_settings(), job, on_step=on_step)
    update_progress_artifact(progress, 100.0, description=f"{run.run_name}: {run.steps} steps")
    return run


def _run_name() -> str:
    params = flow_run.parameters
    return f"train {load_train_config(params['recipe']).name} on {params['snapshot_id']}"


@flow(name="train", flow_run_name=_run_name)
def train(recipe: str, snapshot_id: str, sft_warm_start: bool = True) -> TrainOutcome:
    """Train ``recipe`` on snapshot ``snapshot_id``: SFT on oracle answers first when asked, then GRPO."""
    with swerl_logs():
        sft = run_training(recipe, "sft", snapshot_id) if sft_warm_start else None
        grpo = run_training(recipe, "grpo", snapshot_id, str(sft.model_dir) if sft else None)
        settings = flow_settings()
        if grpo.mlflow_run_id:
            url = mlflow_run_url(settings, grpo.mlflow_run_id)
            create_link_artifact(url, link_text=f"MLflow run {grpo.run_name}", key="mlflow-training-run")
            curve = mlflow_artifact_url(settings, grpo.mlflow_run_id, "reward_curve.png")
            if curve is not None:
                create_image_artifact(curve, key="reward-curve", description=f"Reward per step of {grpo.run_name}")
        return TrainOutcome(recipe, snapshot_id, grpo, sft)
