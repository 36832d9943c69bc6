"""The gate's evidence: candidate and what it is judged against evaluated under one protocol, then registered.

:func:`evaluate_and_register` is what :func:`swerl_core.registry.run` does (the CLI, the flows, the demo). A
checkpoint whose training run already has a registered version gets that version back: a run is registered
once. Otherwise it computes the evaluation protocol once (snapshot, K, held-out instances after
``evaluate.limit``, decoding settings), reuses the checkpoint's latest evaluation under exactly that protocol (or
runs one), evaluates the champion — or, without one under ``registry.without_champion: trained_from``, the model
the checkpoint's training run started from — under the same protocol when it has no such evaluation yet, and
hands both to :func:`swerl_core.registry.register.register`, so the gate always compares like with like. With
K > 1 it does so for the greedy and the sampled evaluation, and, when the sampled evaluation ran its executable
instances' answers against their tests, for its resolved rate too (mode ``resolved``, paired per instance the same
way); the gate decides on ``registry.gate_on`` and the other modes are reported. The registry imports evaluation,
never the other way round.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from swerl_core.config import Settings
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.predictions import sample_resolved, sample_rewards
from swerl_core.evaluate.results import EvalReport
from swerl_core.lineage import direct_base, git_sha
from swerl_core.models import access_refusals, mlflow_client, registry_access
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.registry import RegistryError
from swerl_core.registry.gate import GateMetrics, Measure, TrainedFrom
from swerl_core.registry.register import (
    BaseEvaluator,
    ChampionEvaluator,
    Registration,
    ReportedMode,
    current_user,
    recorded_registration,
    register,
    registered_version,
)
from swerl_core.runs import read_run_id
from swerl_core.store import Store


def evaluate_and_register(
    settings: Settings,
    store: Store,
    checkpoint: Path,
    snapshot_id: str,
    who: str | None = None,
    progress: ProgressCallback | None = None,
) -> Registration:
    """Register ``checkpoint`` as a model version judged on ``snapshot_id``'s held-out split, or return the version
    its training run already has (``Registration.created`` False).

    With ``evaluate.samples`` K > 1 the checkpoint is evaluated both greedily and with K samples at the
    configured temperature; ``registry.gate_on`` picks the deciding one, the other is reported.
    """
    say = ProgressReporter("register", progress)
    name = settings.registry.model_name
    run_dir = Path(checkpoint).resolve().parent
    training_run = read_run_id(run_dir)
    if training_run is not None:
        with registry_access(settings.tracking_uri, name, "READ"):
            existing = _existing_version(settings, name, training_run)
        if existing is not None:
            say(f"training run {run_dir.name} is already registered: {name} v{existing}", 1, 1)
            return recorded_registration(settings, existing)
    base = direct_base(settings.tracking_uri, training_run) if training_run else None
    modes = evaluation_modes(settings)
    evidence = {}
    for mode, (mode_settings, measure) in modes.items():
        found = _evidence(mode, mode_settings, measure, store, checkpoint, snapshot_id, base, say, progress)
        if found is not None:
            evidence[mode] = found
        elif mode == settings.registry.gate_on:
            raise RegistryError(
                f"registry.gate_on is resolved but the evaluation of {checkpoint} on {snapshot_id} ran no tests: "
                "no held-out instance is executable (curate with execution.environments declared), or "
                "evaluate.execute is false"
            )
    deciding, *reported = evidence
    candidate, metrics, evaluate_champion, evaluate_base = evidence[deciding]
    say(f"registering {checkpoint} as a version of {name}")
    with access_refusals(settings.tracking_uri, name, "MANAGE"):  # the service account's (registry.accounts)
        registration = register(
            settings,
            checkpoint,
            candidate,
            metrics,
            who=who or current_user(),
            git_sha=git_sha(),
            evaluate_champion=evaluate_champion,
            evaluate_base=evaluate_base,
            mode=deciding,
            also={mode: ReportedMode(*evidence[mode]) for mode in reported},
        )
    say(f"registered {name} v{registration.version}", 1, 1)  # the verdict is the result's: callers show it once
    return registration


def _existing_version(settings: Settings, name: str, training_run: str) -> str | None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings.tracking_uri)
    try:
        return registered_version(client, name, training_run)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None  # nothing registered under this name yet


def evaluation_modes(settings: Settings) -> dict[str, tuple[Settings, Measure]]:
    """Settings and measure per evaluation mode, the deciding one (``registry.gate_on``) first: greedy always,
    sampled when K > 1, and resolved: the sampled evaluation's (the greedy one when K = 1) resolved rate."""
    greedy = dataclasses.replace(settings, evaluate=dataclasses.replace(settings.evaluate, samples=1))
    modes: dict[str, tuple[Settings, Measure]] = {"greedy": (greedy, "reward")}
    if settings.evaluate.samples > 1:
        modes["sampled"] = (settings, "reward")
    modes["resolved"] = (settings, "resolved")
    deciding = settings.registry.gate_on if settings.registry.gate_on in modes else "greedy"  # sampled with K = 1
    return {deciding: modes[deciding], **modes}


def gate_metrics(report: EvalReport, measure: Measure = "reward") -> GateMetrics | None:
    """The numbers of ``report`` that the registry gate compares on ``measure``, per-instance values included; None
    for ``resolved`` when the evaluation judged no answer by its tests."""
    m = report.metrics
    if measure == "reward":
        mean, values = m.mean_reward, sample_rewards(report.predictions_path)
    elif report.execution is None or report.execution.resolved_rate is None:
        return None
    else:
        mean, values = report.execution.resolved_rate, sample_resolved(report.predictions_path)
    return GateMetrics(
        report.snapshot_id, m.samples_per_instance, mean, m.format_error_rate, report.protocol.fingerprint, values,
        measure,
    )  # fmt: skip


def _evidence(
    mode: str,
    settings: Settings,
    measure: Measure,
    store: Store,
    checkpoint: Path,
    snapshot_id: str,
    base: Path | None,
    say: ProgressReporter,
    progress: ProgressCallback | None,
) -> tuple[GateMetrics, dict[str, float], ChampionEvaluator, BaseEvaluator] | None:
    """The checkpoint's evaluation under ``settings`` (reused or run) on ``measure``, and how to get the champion's
    and the base's under the same protocol; None when it has no numbers on ``measure`` (no test ran)."""
    name = settings.registry.model_name

    def evaluated(model: str, what: str) -> EvalReport:
        report = evaluate(settings, model, snapshot_id, store=store, progress=progress, reuse=True)
        state = f"reused evaluation {report.evaluation_id}" if report.reused else "evaluated"
        say(f"{what} on {snapshot_id} ({mode}): {state}")
        return report

    report = evaluated(str(Path(checkpoint).resolve()), str(checkpoint))
    candidate = gate_metrics(report, measure)
    if candidate is None:
        return None

    def judged(model: str, what: str) -> GateMetrics:
        metrics = gate_metrics(evaluated(model, what), measure)
        if metrics is None:  # the same protocol ran the same instances' tests: only a machine failure gets here
            raise RegistryError(f"{what} has no {measure} numbers on {snapshot_id}: its answers were not run")
        return metrics

    def evaluate_champion(version: str) -> GateMetrics:
        return judged(f"models:/{name}/{version}", f"the champion {name} v{version}")

    def evaluate_base() -> TrainedFrom | None:
        if base is None:
            return None
        return TrainedFrom(str(base), judged(str(base), f"its base {base}"))

    return candidate, report.metrics.headline(), evaluate_champion, evaluate_base
