"""Where evaluation results go: the DuckDB ``evaluations`` table and the checkpoint's MLflow run.

One row per evaluation (headline metrics, per-repository JSON, timings, predictions path, harness
outcome, the protocol and its fingerprint). In MLflow: metrics ``<split>.<metric>``, the predictions
JSONL, ``metrics.json`` and a bar chart comparing the candidate with the models it was trained from
(base → SFT → GRPO) and with the champion, each evaluated under the same protocol. An evaluation is
reused only under the protocol it was run with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swerl_core.evaluate.failure_modes import evaluation_step
from swerl_core.evaluate.metrics import EvalMetrics
from swerl_core.evaluate.protocol import EvalProtocol
from swerl_core.evaluate.resolved import ExecutionSummary, summary_from_dict
from swerl_core.store import EvaluationRecord, Store

PLOTTED = ("mean_reward", "best_of_k_reward", "exact_match_rate", "apply_rate", "format_error_rate")


@dataclass(frozen=True)
class EvalReport:
    """What one evaluation did: which model on what, its metrics, where the predictions are, how long it took."""

    evaluation_id: str
    model_ref: str
    model_name: str | None
    model_version: str | None
    snapshot_id: str
    split: str
    backend: str
    metrics: EvalMetrics
    predictions_path: Path
    generation_s: float
    reward_s: float
    protocol: EvalProtocol
    mlflow_run_id: str | None = None
    resolved_rate: float | None = None
    harness_note: str | None = None
    failure_rates: Mapping[str, float] = field(default_factory=dict)  # failure.* (see evaluate.failure_modes)
    step: int = 0  # the checkpoint's training step: the x-axis of every metric logged
    reused: bool = False  # an evaluation recorded earlier under the same protocol, returned instead of run again
    execution: ExecutionSummary | None = None  # its executable instances' answers run against their tests


def evaluation_record(report: EvalReport) -> EvaluationRecord:
    """The ``evaluations`` row of ``report`` (``store.evaluations.record`` inserts it)."""
    m = report.metrics
    return EvaluationRecord(
        id=report.evaluation_id,
        created_at=datetime.now(UTC),
        model_ref=report.model_ref,
        model_name=report.model_name,
        model_version=report.model_version,
        snapshot_id=report.snapshot_id,
        split=report.split,
        samples=m.samples_per_instance,
        backend=report.backend,
        n_instances=m.n_instances,
        n_samples=m.n_samples,
        mean_reward=m.mean_reward,
        format_error_rate=m.format_error_rate,
        exact_match_rate=m.exact_match_rate,
        apply_rate=m.apply_rate,
        best_of_k_reward=m.best_of_k_reward,
        path_escapes=m.path_escapes,
        tokens_generated=m.tokens_generated,
        per_repo_json=json.dumps(m.as_dict()["per_repo"], sort_keys=True),
        generation_s=report.generation_s,
        reward_s=report.reward_s,
        resolved_rate=report.resolved_rate,
        harness_note=report.harness_note,
        predictions_path=str(report.predictions_path),
        mlflow_run_id=report.mlflow_run_id,
        protocol=report.protocol.fingerprint,
        protocol_json=json.dumps(report.protocol.as_dict(), sort_keys=True),
        failure_rates_json=json.dumps(dict(report.failure_rates), sort_keys=True),
        execution_json=None if report.execution is None else json.dumps(report.execution.as_dict(), sort_keys=True),
        mlflow_logged=False,  # written before the logging; store.evaluations.mark_logged after it
    )


def report_from_row(row: Mapping[str, Any], protocol: EvalProtocol) -> EvalReport:
    """The :class:`EvalReport` of an ``evaluations`` row recorded under ``protocol``, marked ``reused``.

    Rows recorded before failure rates were kept with them (migration 6) have none here (their MLflow run has them).
    """
    ref = str(row["model_ref"])
    metrics = EvalMetrics(
        n_instances=int(row["n_instances"]),
        samples_per_instance=int(row["samples"]),
        n_samples=int(row["n_samples"]),
        mean_reward=float(row["mean_reward"]),
        format_error_rate=float(row["format_error_rate"]),
        exact_match_rate=float(row["exact_match_rate"]),
        apply_rate=float(row["apply_rate"]),
        best_of_k_reward=float(row["best_of_k_reward"]),
        path_escapes=int(row["path_escapes"]),
        tokens_generated=int(row["tokens_generated"]),
        per_repo=json.loads(str(row["per_repo_json"] or "{}")),
    )
    return EvalReport(
        evaluation_id=str(row["id"]),
        model_ref=ref,
        model_name=row["model_name"],
        model_version=row["model_version"],
        snapshot_id=str(row["snapshot_id"]),
        split=str(row["split"]),
        backend=str(row["backend"]),
        metrics=metrics,
        predictions_path=Path(str(row["predictions_path"] or "")),
        generation_s=float(row["generation_s"]),
        reward_s=float(row["reward_s"]),
        protocol=protocol,
        mlflow_run_id=row["mlflow_run_id"],
        resolved_rate=row["resolved_rate"],
        harness_note=row["harness_note"],
        failure_rates=json.loads(str(row.get("failure_rates_json") or "{}")),
        step=evaluation_step(Path(ref)) if Path(ref).is_dir() else 0,
        reused=True,
        execution=summary_from_dict(json.loads(row["execution_json"])) if row.get("execution_json") else None,
    )


def record_evaluation(store: Store, report: EvalReport) -> None:
    """Insert ``report`` as one row of ``evaluations`` (one short write to the store)."""
    store.evaluations.record(evaluation_record(report))


def latest_evaluation(
    store: Store,
    protocol: EvalProtocol,
    *,
    model_ref: str | None = None,
    version: tuple[str, str] | None = None,
    unlogged: bool = False,
) -> dict[str, Any] | None:
    """The newest ``evaluations`` row of a model (by ``model_ref`` or ``(name, version)``) under ``protocol``; with
    ``unlogged``, the newest one whose MLflow logging never finished.

    Rows of other protocols (another ``--limit``, K or decoding setting) and rows recorded before
    protocols were (no fingerprint) never match.
    """
    return store.evaluations.latest(
        protocol.snapshot_id, protocol.samples, protocol.fingerprint, model_ref=model_ref, version=version,
        unlogged=unlogged,
    )  # fmt: skip


@dataclass(frozen=True)
class Baseline:
    """An evaluation under the candidate's protocol to draw beside it: a model it descends from, or the champion."""

    label: str  # e.g. "base: models/tiny-0", "sft: demo-sft-…/final", "champion v3"
    model_ref: str
    metrics: Mapping[str, float]  # the PLOTTED metrics
    direct_base: bool = False  # the model the candidate's own training run started from


def comparison_figure(bars: Sequence[tuple[str, Mapping[str, float]]], title: str) -> Any:
    """A grouped bar chart of :data:`PLOTTED` metrics, one bar per ``(label, metrics)`` in the order given."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / len(bars)
    for i, (label, metrics) in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        axes.bar([x + offset for x in range(len(PLOTTED))], [float(metrics[k]) for k in PLOTTED], width, label=label)
    axes.set_xticks(range(len(PLOTTED)), [k.replace("_", " ") for k in PLOTTED], rotation=15)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set(ylim=(-1.05, 1.05), title=title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=min(len(bars), 3), fontsize="small")
    return figure


def log_to_mlflow(
    client: Any, run_id: str, report: EvalReport, lineage: Sequence[Baseline], champion: Baseline | None
) -> None:
    """Log ``report``'s metrics, predictions, ``metrics.json`` and the comparison plot into run ``run_id``.

    ``lineage`` (oldest first) are the evaluations of the models the candidate was trained from; when its
    direct base is among them, the gain over it is logged as ``<split>.gain_over_base.<metric>``.
    """
    from mlflow.entities import Metric

    stamp = int(datetime.now(UTC).timestamp() * 1000)
    headline = report.metrics.headline()
    if report.resolved_rate is not None:
        headline["resolved_rate"] = report.resolved_rate
    step = report.step
    metrics = [Metric(f"{report.split}.{k}", v, stamp, step) for k, v in sorted(headline.items())]
    metrics += [
        Metric(f"{report.split}.{k}", v, stamp, step)
        for k, v in (("generation_s", report.generation_s), ("reward_s", report.reward_s))
    ]
    metrics += [Metric(f"{report.split}.{k}", v, stamp, step) for k, v in sorted(report.failure_rates.items())]
    if report.execution is not None:
        ran = execution_metrics(report.execution)
        metrics += [Metric(f"{report.split}.{k}", v, stamp, step) for k, v in ran.items()]
    if lineage and lineage[-1].direct_base:
        base_metrics = lineage[-1].metrics
        metrics += [
            Metric(f"{report.split}.gain_over_base.{k}", headline[k] - float(base_metrics[k]), stamp, step)
            for k in PLOTTED
        ]
    for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start : start + 900])
    base = f"evaluations/{report.evaluation_id}"
    client.log_artifact(run_id, str(report.predictions_path), base)
    summary = {
        **report.metrics.as_dict(),
        "snapshot_id": report.snapshot_id,
        "model_ref": report.model_ref,
        "protocol": report.protocol.fingerprint,
        "protocol_settings": report.protocol.as_dict(),
    }
    baselines = [*lineage, *([champion] if champion else [])]
    document: dict[str, Any] = {
        **summary,
        "harness_note": report.harness_note,
        "step": step,
        "failure_rates": report.failure_rates,
        "execution": None if report.execution is None else report.execution.as_dict(),
        "baselines": [{"label": b.label, "model_ref": b.model_ref, **b.metrics} for b in baselines],
    }
    client.log_dict(run_id, document, f"{base}/metrics.json")
    missing = [what for what, found in (("earlier stage", lineage), ("champion", champion)) if not found]
    title = f"{report.split} {report.snapshot_id}, K={report.metrics.samples_per_instance}"
    title += f" (no {' or '.join(missing)} evaluation)" if missing else ""
    bars = [*((b.label, b.metrics) for b in lineage), ("candidate", headline)]
    bars += [(champion.label, champion.metrics)] if champion else []
    client.log_figure(run_id, comparison_figure(bars, title), f"{base}/comparison.png")
    if report.execution is not None and report.execution.calibration.reliability:
        short = f"{report.split}, K={report.metrics.samples_per_instance}"
        client.log_figure(run_id, reliability_figure(report.execution, short), f"{base}/reliability.png")
    client.set_tag(run_id, f"evaluation.{report.split}", report.evaluation_id)
    client.set_tag(run_id, f"evaluation.{report.split}.protocol", report.protocol.fingerprint)


def execution_metrics(execution: ExecutionSummary) -> dict[str, float]:
    """The scalar metrics of an evaluation's test runs, as logged to MLflow (``<split>.<name>``) beside
    ``resolved_rate`` (a headline metric): its interval, the reward's ROC AUC and rank correlation for
    "resolved", the sample count per reason. A measure the runs could not define (no sample judged; one
    class only) is left out, never logged as 0."""
    cal = execution.calibration
    values: dict[str, float | None] = {
        "resolved_rate_lower": execution.lower,
        "resolved_rate_upper": execution.upper,
        "reward_auc": cal.roc_auc,
        "reward_spearman": cal.spearman,
        "executable_instances": float(execution.executable_instances),
        "execution_s": execution.seconds,
        **{f"resolution.{reason}": float(count) for reason, count in execution.reasons.items()},
    }
    return {k: float(v) for k, v in sorted(values.items()) if v is not None}


def reliability_figure(execution: ExecutionSummary, title: str) -> Any:
    """The reliability plot: resolved rate by reward decile (each bar a bin of equal sample count), the bin's mean
    reward under it, and the overall resolved rate as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    bins = execution.calibration.reliability
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.bar(range(len(bins)), [b.resolved_rate for b in bins], 0.8, label="resolved rate")
    labels = [f"{b.low:+.2f}…{b.high:+.2f}\nn={b.count}" for b in bins]
    axes.set_xticks(range(len(bins)), labels, fontsize="x-small")
    if execution.resolved_rate is not None:
        axes.axhline(execution.resolved_rate, color="black", linewidth=0.8, linestyle="--", label="overall")
    auc = execution.calibration.roc_auc
    axes.set(
        ylim=(0, 1.05),
        xlabel="reward bin (equal sample counts)",
        ylabel="resolved rate",
        title=f"{title}: reward vs resolved (ROC AUC {'n/a' if auc is None else f'{auc:.3f}'})",
    )
    axes.legend(loc="upper left", fontsize="small")
    return figure
