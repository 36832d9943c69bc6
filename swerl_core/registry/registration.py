"""A checkpoint from evaluation to the registry in one call: the step after every training run.

:func:`evaluate_and_register` computes the evaluation protocol once (snapshot, K, held-out instances
after ``evaluate.limit``, decoding settings), reuses the checkpoint's latest evaluation under exactly
that protocol (or runs one), evaluates the champion under the same protocol when it has no such
evaluation yet, and hands both to :func:`swerl_core.registry.register.register`, so the gate always
compares like with like. :func:`swerl_core.registry.run` (the CLI, the flows, the demo) goes through here.
The registry imports evaluation, never the other way round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swerl_core.config import Settings
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.protocol import EvalProtocol, heldout_protocol
from swerl_core.evaluate.results import EvalReport, latest_evaluation
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import Registration, current_user, register
from swerl_core.store import Store

_HEADLINE = ("mean_reward", "format_error_rate", "exact_match_rate", "apply_rate", "best_of_k_reward", "n_instances")


def evaluate_and_register(
    settings: Settings,
    store: Store,
    checkpoint: Path,
    snapshot_id: str,
    who: str | None = None,
    progress: ProgressCallback | None = None,
) -> Registration:
    """Register ``checkpoint`` as a model version judged against the champion on ``snapshot_id``'s held-out split."""
    from swerl_core.train.tracking import git_sha

    say = ProgressReporter("register", progress)
    name = settings.registry.model_name
    protocol = heldout_protocol(settings, snapshot_id)
    row = latest_evaluation(store, protocol, model_ref=str(checkpoint.resolve()))
    if row is None:
        say(f"evaluating {checkpoint} on {snapshot_id}")
        report = evaluate(settings, str(checkpoint), snapshot_id, store=store, progress=progress)
        candidate, metrics = gate_metrics(report), report.metrics.headline()
    else:
        say(f"reusing evaluation {row['id']} of {checkpoint} on {snapshot_id}")
        candidate, metrics = _row_metrics(row, protocol), {key: float(row[key]) for key in _HEADLINE}

    def evaluate_champion(version: str) -> GateMetrics:
        found = latest_evaluation(store, protocol, version=(name, version))
        if found is not None:
            return _row_metrics(found, protocol)
        say(f"evaluating the champion {name} v{version} on {snapshot_id} under the same protocol")
        report = evaluate(settings, f"models:/{name}/{version}", snapshot_id, store=store, progress=progress)
        return gate_metrics(report)

    say(f"registering {checkpoint} as a version of {name}")
    registration = register(
        settings,
        checkpoint,
        candidate,
        metrics,
        who=who or current_user(),
        git_sha=git_sha(),
        evaluate_champion=evaluate_champion,
    )
    say(f"{name} v{registration.version}: gate {registration.verdict.verdict}", 1, 1)
    return registration


def gate_metrics(report: EvalReport) -> GateMetrics:
    """The numbers of ``report`` that the registry gate compares."""
    m = report.metrics
    return GateMetrics(
        report.snapshot_id, m.samples_per_instance, m.mean_reward, m.format_error_rate, report.protocol.fingerprint
    )


def _row_metrics(row: dict[str, Any], protocol: EvalProtocol) -> GateMetrics:
    return GateMetrics(
        protocol.snapshot_id, protocol.samples, row["mean_reward"], row["format_error_rate"], protocol.fingerprint
    )
