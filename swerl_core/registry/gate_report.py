"""The gate's evidence in MLflow: per-instance rewards of a version, its decision, table and paired-difference plot.

Every registered version gets, under its run's ``registry/v<version>/`` artifact path, ``rewards.json``
(each held-out instance's K sample rewards, so a later candidate can be paired with it when it is
champion), and once judged ``gate.json`` (decision, interval, test, per-instance table) and
``paired_differences.png``. The tag ``eval.rewards_artifact`` says where the rewards are. This module
only writes and reads those artifacts; :mod:`.gate` decides.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swerl_core.registry.gate import GateVerdict
from swerl_core.registry.paired import PairedComparison, decide_hint

REWARDS_TAG = "eval.rewards_artifact"


def version_dir(version: str) -> str:
    """The artifact folder of one version's gate evidence inside its run."""
    return f"registry/v{version}"


def log_rewards(
    client: Any, run_id: str, version: str, rewards: Mapping[str, tuple[float, ...]], mode: str = ""
) -> str:
    """Store a version's per-instance sample rewards (of one evaluation mode) in its run; returns the artifact path."""
    path = f"{version_dir(version)}/rewards{'-' + mode if mode else ''}.json"
    client.log_dict(run_id, {k: list(v) for k, v in sorted(rewards.items())}, path)
    return path


def read_rewards(client: Any, run_id: str, path: str) -> dict[str, tuple[float, ...]]:
    """The per-instance sample rewards stored by :func:`log_rewards` (empty when the artifact is missing)."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError):
            return {}
        table = json.loads(Path(local).read_text(encoding="utf-8"))
    return {str(k): tuple(float(x) for x in v) for k, v in table.items()}


def gate_document(verdict: GateVerdict) -> dict[str, Any]:
    """The verdict as one JSON-ready document: decision, reason, thresholds, statistics, per-instance table."""
    c = verdict.comparison
    return {
        "decision": verdict.decision,
        "reason": verdict.reason,
        "champion_version": verdict.champion_version,
        "baseline": verdict.baseline,
        "against": verdict.against,
        "baseline_model": verdict.trained_from.model if verdict.trained_from else None,
        "baseline_mean_reward": verdict.baseline_metrics.mean_reward if verdict.baseline_metrics else None,
        "protocol": verdict.candidate.protocol,
        "snapshot_id": verdict.candidate.snapshot_id,
        "candidate_mean_reward": verdict.candidate.mean_reward,
        "champion_mean_reward": verdict.champion.mean_reward if verdict.champion else None,
        "format_error_rate": verdict.candidate.format_error_rate,
        "format_error_ceiling": verdict.format_error_ceiling,
        "comparison": None
        if c is None
        else {
            "margin": c.margin,
            "mean_difference": c.mean_difference,
            "ci": [c.lower, c.upper],
            "confidence": c.confidence,
            "p_value": c.p_value,
            "t_statistic": c.t_statistic,
            "n_instances": c.n_instances,
            "samples": c.samples,
            "bootstrap_seed": c.seed,
            "bootstrap_resamples": c.resamples,
            "instances_needed": c.instances_needed,
            "samples_needed": c.samples_needed,
            "per_instance": c.table(),
        },
    }


def paired_figure(comparison: PairedComparison, title: str, other: str = "champion", measure: str = "reward") -> Any:
    """Per-instance differences (sorted), their mean, the interval and the margin, as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    diffs = sorted(r.difference for r in comparison.rows)
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    colors = ["tab:green" if d > 0 else "tab:red" if d < 0 else "tab:gray" for d in diffs]
    axes.bar(range(len(diffs)), diffs, color=colors, width=0.9)
    axes.axhspan(
        comparison.lower, comparison.upper, color="tab:blue", alpha=0.2, label=f"{comparison.confidence:.0%} CI"
    )
    axes.axhline(comparison.mean_difference, color="tab:blue", label=f"mean {comparison.mean_difference:+.3f}")
    axes.axhline(comparison.margin, color="black", linestyle="--", label=f"margin {comparison.margin:g}")
    axes.set(xlabel="held-out instance (sorted by difference)", ylabel=f"candidate − {other} {measure}")
    axes.set_title(f"{title}: {comparison.decision}")
    axes.legend(loc="upper left")
    return figure


def log_gate_report(client: Any, run_id: str, version: str, verdict: GateVerdict) -> tuple[str, ...]:
    """Log ``gate.json`` and (with a comparison) ``paired_differences.png``; returns their artifact URIs."""
    base = version_dir(version)
    client.log_dict(run_id, gate_document(verdict), f"{base}/gate.json")
    paths = [f"{base}/gate.json"]
    if verdict.comparison is not None:
        figure = paired_figure(
            verdict.comparison, f"v{version} vs {verdict.against}", verdict.baseline_name, verdict.candidate.measure
        )
        client.log_figure(run_id, figure, f"{base}/paired_differences.png")
        paths.append(f"{base}/paired_differences.png")
    root = client.get_run(run_id).info.artifact_uri
    return tuple(f"{root}/{path}" for path in paths)


def gate_markdown(verdict: GateVerdict, max_rows: int = 50) -> str:
    """The verdict as Markdown for a gate artifact: decision, interval, test, what would decide it, per instance."""
    lines = [f"## Gate: **{verdict.decision}** against {verdict.against}", "", verdict.reason, ""]
    c = verdict.comparison
    if c is None:
        return "\n".join(lines)
    against, other = verdict.against, verdict.baseline_name
    lines += [
        "| statistic | value |",
        "|---|---|",
        f"| mean paired difference (candidate − {against}) | {c.mean_difference:+.4f} |",
        f"| {c.confidence:.0%} bootstrap CI (seed {c.seed}, {c.resamples} resamples) | "
        f"[{c.lower:+.4f}, {c.upper:+.4f}] |",
        f"| margin | {c.margin:g} |",
        f"| sign-flip permutation p (one-sided) | {c.p_value:.4f} |",
        f"| paired t | {c.t_statistic:.3f} |",
        f"| instances × K | {c.n_instances} × {c.samples} |",
    ]
    if c.instances_needed is not None or c.samples_needed is not None:
        lines.append(f"| to decide | {decide_hint(c)} |")
    rows = sorted(c.rows, key=lambda r: r.difference)
    lines += ["", f"| instance | candidate | {other} | difference |", "|---|---:|---:|---:|"]
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + rows[-max_rows // 2 :]
    lines += [f"| {r.instance_id} | {r.candidate:+.3f} | {r.champion:+.3f} | {r.difference:+.3f} |" for r in shown]
    if len(rows) > len(shown):
        lines.append(f"| … {len(rows) - len(shown)} more in gate.json | | | |")
    return "\n".join(lines)
