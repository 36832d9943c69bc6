"""The ``train`` flow: an optional SFT warm start, then GRPO, each one call of ``swerl_core.train.run``.

``train.launcher`` chooses where a stage runs — a local child process resumed from its last checkpoint when it
dies, a Kubernetes Job whose pod log lines reach this flow run's log, or this process — and the flow never knows
which. It records the effective settings and recipe once, publishes a progress artifact moved by every step's
metrics, a link to the MLflow run, and the reward curve as an image served by the MLflow server.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from flows.bridge import (
    artifact_key,
    flow_settings,
    mlflow_artifact_url,
    mlflow_run_url,
    recipe_config,
    recipe_name,
    record_configuration,
    swerl_logs,
)
from swerl_core import train as training
from swerl_core.progress import Progress
from swerl_core.train.config import Stage, TrainConfig
from swerl_core.train.plan import TrainPlan
from swerl_core.train.result import TrainResult


@dataclass(frozen=True)
class TrainOutcome:
    """The trained run (GRPO) and, when there was one, its SFT warm start."""

    recipe: TrainConfig
    snapshot_id: str
    grpo: TrainResult
    sft: TrainResult | None


@task(name="run-training", task_run_name="train {stage}")
def run_training(
    recipe: TrainConfig, stage: Stage, snapshot_id: str, base_model: str | None = None, resume: bool = True
) -> TrainResult:
    """Train one stage where the settings say, moving a progress artifact with each step's metrics; with
    ``resume``, continue this recipe's run on the snapshot and base model when there is one."""
    what = f"{recipe.name} {stage} on {snapshot_id}"
    progress = create_progress_artifact(0.0, key=artifact_key("training-progress", stage), description=what)

    def on_progress(event: Progress) -> None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(event.metrics.items()) if k in ("reward", "loss"))
        line = f"{what}: step {event.step}/{event.total} {shown}" if event.metrics else event.message
        update_progress_artifact(progress, 100.0 * (event.fraction or 0.0), description=line)

    request = training.TrainRequest(recipe, stage, snapshot_id, base_model=base_model, reuse=resume)
    result = training.run(flow_settings(), request, on_progress)
    update_progress_artifact(progress, 100.0, description=result.summary())
    return result


@task(name="plan-training")
def plan_training(recipe: TrainConfig, snapshot_id: str, stages: tuple[Stage, ...]) -> None:
    """Check each stage's plan (what one GPU must hold) before anything trains, and publish it; a recipe that cannot
    fit fails here with one line, before the first stage starts a process or a pod."""

    def publish(made: TrainPlan) -> None:
        verdict = made.refusal() if made.problems else f"{made.recipe} {made.stage}: fits"
        markdown = f"## Training plan: {made.recipe} {made.stage}\n\n```\n{made.render()}\n```"
        create_markdown_artifact(markdown, key=artifact_key("training-plan", made.stage), description=verdict)

    for stage in stages:
        training.checked_plan(flow_settings(), training.TrainRequest(recipe, stage, snapshot_id), shown=publish)


def _run_name() -> str:
    params = flow_run.parameters
    return f"train {recipe_name(params['recipe'])} on {params['snapshot_id']}"


@flow(name="train", flow_run_name=_run_name)
def train(
    recipe: str | TrainConfig, snapshot_id: str, sft_warm_start: bool = True, resume: bool = True
) -> TrainOutcome:
    """Train ``recipe`` (a recipe file, or the recipe a parent flow read) on snapshot ``snapshot_id``: SFT on oracle
    answers first when asked, then GRPO. With ``resume`` (the default) a stage continues the run an earlier flow run
    left: an unfinished one from its last checkpoint, a finished one (the SFT warm start) as it is; ``False``
    starts every stage anew."""
    with swerl_logs():
        settings, cfg = flow_settings(), recipe_config(recipe)
        record_configuration(settings, cfg)
        plan_training(cfg, snapshot_id, ("sft", "grpo") if sft_warm_start else ("grpo",))
        sft = run_training(cfg, "sft", snapshot_id, resume=resume) if sft_warm_start else None
        grpo = run_training(cfg, "grpo", snapshot_id, str(sft.model_dir) if sft else None, resume)
        if grpo.mlflow_run_id:
            url = mlflow_run_url(settings, grpo.mlflow_run_id)
            create_link_artifact(url, link_text=f"MLflow run {grpo.run_name}", key="mlflow-training-run")
            curve = mlflow_artifact_url(settings, grpo.mlflow_run_id, "reward_curve.png")
            if curve is not None:
                create_image_artifact(curve, key="reward-curve", description=f"Reward per step of {grpo.run_name}")
        return TrainOutcome(cfg, snapshot_id, grpo, sft)
