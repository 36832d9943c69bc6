"""The ``evaluate`` flow: every checkpoint of a training run on the held-out split (mapped, once each)."""

from __future__ import annotations

from prefect import flow, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.bridge import artifact_key, flow_settings, swerl_logs
from swerl_core.registry.checkpoint_sweep import CheckpointScore, score_checkpoint
from swerl_core.train.runs import run_checkpoints


@task(name="evaluate-checkpoint", task_run_name="evaluate {checkpoint}")
def evaluate_checkpoint(checkpoint: str, snapshot_id: str) -> CheckpointScore:
    """Evaluate one checkpoint (or reuse its evaluation under the same protocol) and publish its table."""
    score = score_checkpoint(flow_settings(), checkpoint, snapshot_id)
    rows = [
        {"metric": "mean reward", "value": round(score.mean_reward, 4)},
        {"metric": "format-error rate", "value": round(score.format_error_rate, 4)},
        {"metric": "apply rate", "value": round(score.apply_rate, 4)},
        {"metric": "exact-match rate", "value": round(score.exact_match_rate, 4)},
        {"metric": "held-out instances", "value": score.n_instances},
        {"metric": "evaluation", "value": score.evaluation_id + (" (reused)" if score.reused else "")},
    ]
    name = score.checkpoint.name
    create_table_artifact(
        rows, key=artifact_key("evaluation", name), description=f"{score.checkpoint} on {snapshot_id}"
    )
    return score


# One evaluation at a time: each already uses every core, and they share one store.
@flow(name="evaluate", flow_run_name="evaluate {run_name}", task_runner=ThreadPoolTaskRunner(max_workers=1))
def evaluate(run_name: str, snapshot_id: str) -> list[CheckpointScore]:
    """Evaluate every checkpoint the training run ``run_name`` saved on ``snapshot_id``'s held-out split."""
    with swerl_logs():
        checkpoints = [str(p) for p in run_checkpoints(flow_settings().checkpoints_dir / run_name)]
        return list(evaluate_checkpoint.map(checkpoints, unmapped(snapshot_id)).result())
