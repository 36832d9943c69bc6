"""The ``evaluate`` flow: the models a training run started from, then every checkpoint of the run, on the held-out
split (each evaluated once per protocol; later calls reuse the evaluation)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.bridge import artifact_key, flow_settings, swerl_logs
from swerl_core.registry.checkpoint_sweep import CheckpointScore, score_checkpoint, score_lineage
from swerl_core.runs import run_checkpoints


@task(name="evaluate-checkpoint", task_run_name="evaluate {checkpoint}")
def evaluate_checkpoint(checkpoint: str, snapshot_id: str) -> CheckpointScore:
    """Evaluate one checkpoint (or reuse its evaluation under the same protocol) and publish its table."""
    score = score_checkpoint(flow_settings(), checkpoint, snapshot_id)
    rows = [{"metric": k, "value": v} for k, v in _score_row(score).items()]
    name = score.checkpoint.name
    create_table_artifact(
        rows, key=artifact_key("evaluation", name), description=f"{score.checkpoint} on {snapshot_id}"
    )
    return score


@task(name="evaluate-lineage", task_run_name="evaluate the models {run_name} started from")
def evaluate_lineage(run_name: str, snapshot_id: str) -> list[CheckpointScore]:
    """Evaluate (or reuse) the models the run descends from, oldest first, and publish them as one table."""
    settings = flow_settings()
    scores = score_lineage(settings, settings.checkpoints_dir / run_name, snapshot_id)
    if scores:
        rows = [{"model": str(s.checkpoint), **_score_row(s)} for s in scores]
        description = f"the models {run_name} was trained from, oldest first, on {snapshot_id}"
        create_table_artifact(rows, key="model-lineage", description=description)
    return scores


def _score_row(score: CheckpointScore) -> dict[str, str | float | int]:
    return {
        "mean reward": round(score.mean_reward, 4),
        "format-error rate": round(score.format_error_rate, 4),
        "apply rate": round(score.apply_rate, 4),
        "exact-match rate": round(score.exact_match_rate, 4),
        "held-out instances": score.n_instances,
        "evaluation": score.evaluation_id + (" (reused)" if score.reused else ""),
    }


# One evaluation at a time: each already uses every core, and they share one store.
@flow(name="evaluate", flow_run_name="evaluate {run_name}", task_runner=ThreadPoolTaskRunner(max_workers=1))
def evaluate(run_name: str, snapshot_id: str) -> list[CheckpointScore]:
    """Evaluate every checkpoint the training run ``run_name`` saved on ``snapshot_id``'s held-out split.

    The models the run started from are evaluated first (``evaluate.lineage``), so that each checkpoint's
    MLflow comparison plot shows them beside it.
    """
    with swerl_logs():
        lineage = evaluate_lineage(run_name, snapshot_id, return_state=True)
        if lineage.is_failed():  # a base that no longer loads must not keep the run's own checkpoints unjudged
            get_run_logger().warning("the comparison plots leave out the run's earlier stages: %s", lineage.message)
        checkpoints = [str(p) for p in run_checkpoints(flow_settings().checkpoints_dir / run_name)]
        return list(evaluate_checkpoint.map(checkpoints, unmapped(snapshot_id)).result())
