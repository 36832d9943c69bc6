"""The gate's evidence: candidate and champion evaluated under one protocol, then registered in one call.

:func:`evaluate_and_register` computes the evaluation protocol once (snapshot, K, held-out instances
after ``evaluate.limit``, decoding settings), reuses the checkpoint's latest evaluation under exactly
that protocol (or runs one), evaluates the champion under the same protocol when it has no such
evaluation yet, and hands both to :func:`swerl_core.registry.register.register`, so the gate always
compares like with like. With K > 1 it does so for the greedy and the sampled evaluation, and the
gate decides on ``registry.gate_on``. :func:`swerl_core.registry.run` (the CLI, the flows, the demo)
goes through here. The registry imports evaluation, never the other way round.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from swerl_core.config import Settings
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.predictions import sample_rewards
from swerl_core.evaluate.protocol import EvalProtocol, heldout_protocol
from swerl_core.evaluate.results import EvalReport, latest_evaluation
from swerl_core.lineage import git_sha
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import ChampionEvaluator, Registration, ReportedMode, current_user, register
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
    """Register ``checkpoint`` as a model version judged against the champion on ``snapshot_id``'s held-out split.

    With ``evaluate.samples`` K > 1 the checkpoint is evaluated both greedily and with K samples at the
    configured temperature; ``registry.gate_on`` picks the deciding one, the other is reported.
    """
    say = ProgressReporter("register", progress)
    name = settings.registry.model_name
    modes = evaluation_modes(settings)
    evidence = {
        mode: _evidence(mode, mode_settings, store, checkpoint, snapshot_id, say, progress)
        for mode, mode_settings in modes.items()
    }
    deciding, *reported = modes
    candidate, metrics, evaluate_champion = evidence[deciding]
    say(f"registering {checkpoint} as a version of {name}")
    registration = register(
        settings,
        checkpoint,
        candidate,
        metrics,
        who=who or current_user(),
        git_sha=git_sha(),
        evaluate_champion=evaluate_champion,
        mode=deciding,
        also={mode: ReportedMode(*evidence[mode]) for mode in reported},
    )
    say(f"registered {name} v{registration.version}", 1, 1)  # the verdict is the result's: callers show it once
    return registration


def evaluation_modes(settings: Settings) -> dict[str, Settings]:
    """Settings per evaluation mode, deciding one (``registry.gate_on``) first: greedy always, sampled when K > 1."""
    greedy = dataclasses.replace(settings, evaluate=dataclasses.replace(settings.evaluate, samples=1))
    if settings.evaluate.samples == 1:
        return {"greedy": settings}
    modes = {"sampled": settings, "greedy": greedy}
    return modes if settings.registry.gate_on == "sampled" else {"greedy": greedy, "sampled": settings}


def gate_metrics(report: EvalReport) -> GateMetrics:
    """The numbers of ``report`` that the registry gate compares, per-instance rewards included."""
    m = report.metrics
    return GateMetrics(
        report.snapshot_id,
        m.samples_per_instance,
        m.mean_reward,
        m.format_error_rate,
        report.protocol.fingerprint,
        sample_rewards(report.predictions_path),
    )


def _evidence(
    mode: str,
    settings: Settings,
    store: Store,
    checkpoint: Path,
    snapshot_id: str,
    say: ProgressReporter,
    progress: ProgressCallback | None,
) -> tuple[GateMetrics, dict[str, float], ChampionEvaluator]:
    """The checkpoint's evaluation under ``settings`` (reused or run) and how to get the champion's under the same."""
    name = settings.registry.model_name
    protocol = heldout_protocol(settings, snapshot_id)
    row = latest_evaluation(store, protocol, model_ref=str(checkpoint.resolve()))
    if row is None:
        say(f"evaluating {checkpoint} on {snapshot_id} ({mode})")
        report = evaluate(settings, str(checkpoint), snapshot_id, store=store, progress=progress)
        candidate, metrics = gate_metrics(report), report.metrics.headline()
    else:
        say(f"reusing evaluation {row['id']} of {checkpoint} on {snapshot_id} ({mode})")
        candidate, metrics = _row_metrics(row, protocol), {key: float(row[key]) for key in _HEADLINE}

    def evaluate_champion(version: str) -> GateMetrics:
        found = latest_evaluation(store, protocol, version=(name, version))
        if found is not None:
            return _row_metrics(found, protocol)
        say(f"evaluating the champion {name} v{version} on {snapshot_id} under the same protocol ({mode})")
        report = evaluate(settings, f"models:/{name}/{version}", snapshot_id, store=store, progress=progress)
        return gate_metrics(report)

    return candidate, metrics, evaluate_champion


def _row_metrics(row: dict[str, Any], protocol: EvalProtocol) -> GateMetrics:
    rewards = sample_rewards(Path(row["predictions_path"] or ""))
    return GateMetrics(
        protocol.snapshot_id,
        protocol.samples,
        row["mean_reward"],
        row["format_error_rate"],
        protocol.fingerprint,
        rewards,
    )
