"""The ``evaluate`` flow: the models a training run started from, then every checkpoint of the run, on the held-out
split — each one call of ``swerl_core.evaluate.run``, which reuses an evaluation under the same protocol."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.bridge import artifact_key, flow_settings, swerl_logs
from swerl_core import evaluate as evaluation
from swerl_core.evaluate.resolved import execution_columns
from swerl_core.evaluate.results import EvalReport
from swerl_core.evaluate.uncertainty import report_interval
from swerl_core.lineage import ancestor_models, run_stage
from swerl_core.runs import run_checkpoints


@task(name="evaluate-model", task_run_name="evaluate {model}")
def evaluate_model(model: str, snapshot_id: str) -> EvalReport:
    """Evaluate one model on ``snapshot_id``'s held-out split, or reuse its evaluation under the same protocol."""
    return evaluation.run(flow_settings(), evaluation.EvaluateRequest(model, snapshot_id, reuse=True))


def _row(report: EvalReport) -> dict[str, str | float | int]:
    m = report.metrics
    interval = report_interval(report.predictions_path)
    return {
        "mean reward": round(m.mean_reward, 4),
        "90% interval": "-" if interval is None else f"[{interval[1]:+.3f}, {interval[2]:+.3f}]",
        "samples per instance": m.samples_per_instance,
        "format-error rate": round(m.format_error_rate, 4),
        "apply rate": round(m.apply_rate, 4),
        "exact-match rate": round(m.exact_match_rate, 4),
        "held-out instances": m.n_instances,
        **execution_columns(report.execution),
        "evaluation": report.evaluation_id + (" (reused)" if report.reused else ""),
    }


# One evaluation at a time: each already uses every core, and they share one store.
@flow(name="evaluate", flow_run_name="evaluate {run_name}", task_runner=ThreadPoolTaskRunner(max_workers=1))
def evaluate(run_name: str, snapshot_id: str) -> list[EvalReport]:
    """Evaluate every checkpoint the training run ``run_name`` saved on ``snapshot_id``'s held-out split.

    The models the run started from are evaluated first (``evaluate.lineage``), so that each checkpoint's
    MLflow comparison plot shows them beside it; one that no longer loads is left out, never keeping the
    run's own checkpoints unjudged.
    """
    with swerl_logs():
        settings = flow_settings()
        run_dir = settings.checkpoints_dir / run_name
        ancestors = [(model, stage, evaluate_model(str(model), snapshot_id, return_state=True))
                     for model, stage in ancestor_models(settings, run_dir)]  # fmt: skip
        for model, _, state in ancestors:
            if state.is_failed():
                get_run_logger().warning("left out of the comparison: %s could not be evaluated: %s", model,
                                         state.message)  # fmt: skip
        # Each report's row once: it reads the predictions file and bootstraps the interval.
        lineage = [(stage or "base", state.result()) for _, stage, state in ancestors if state.is_completed()]
        lineage_rows = [_row(report) for _, report in lineage]
        if lineage:
            description = f"the models {run_name} was trained from, oldest first, on {snapshot_id}"
            rows = [{"stage": stage, "model": report.model_ref, **row}
                    for (stage, report), row in zip(lineage, lineage_rows, strict=True)]  # fmt: skip
            create_table_artifact(rows, key="model-lineage", description=description)
        checkpoints = [str(path) for path in run_checkpoints(run_dir)]
        reports = list(evaluate_model.map(checkpoints, unmapped(snapshot_id)).result())
        report_rows = [_row(report) for report in reports]
        for report, row in zip(reports, report_rows, strict=True):
            rows = [{"metric": k, "value": v} for k, v in row.items()]
            key = artifact_key("evaluation", Path(report.model_ref).name)
            create_table_artifact(rows, key=key, description=f"{report.model_ref} on {snapshot_id}")
        own = run_stage(settings.tracking_uri, run_dir) or run_name
        stages = [*lineage, *((own, report) for report in reports)]
        table = [{"stage": stage, "model": Path(report.model_ref).name, **row}
                 for (stage, report), row in zip(stages, lineage_rows + report_rows, strict=True)]  # fmt: skip
        create_table_artifact(
            table,
            key="held-out-evaluations",
            description=f"every model of {run_name} and its lineage on {snapshot_id}, one protocol",
        )
        return reports
