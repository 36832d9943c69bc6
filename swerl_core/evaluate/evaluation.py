"""The ``evaluate`` stage: a checkpoint (path or ``models:/NAME@ALIAS``) on held-out PRs or SWE-bench Verified.

:func:`evaluate` returns the model's recorded evaluation under the same protocol when asked to reuse one; else it
resolves the model, runs the rollouts (K samples per instance, greedy for K = 1),
writes the predictions JSONL under ``$SWERL_HOME/evaluations/<id>/``, records a row in DuckDB
``evaluations`` (the record: per-instance rewards are in the predictions it names), then logs the metrics,
predictions and a comparison plot (the models it was trained from, the champion, the checkpoint) into the
checkpoint's MLflow run (its training run, or its model version's run, else a run in ``swerl-evaluate``) and marks
the row logged. An evaluation whose logging failed is logged by the next call for the same model and protocol,
from its row, without evaluating again.
:func:`evaluate_swebench` does the same on a user-supplied SWE-bench instance file, then runs the
official harness where a Docker engine exists.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swerl_core.bucket import ensure_snapshot
from swerl_core.config import Secret, Settings
from swerl_core.errors import ModelError, StorageError
from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.backends import EndpointBackend, GenerationBackend, TransformersBackend, VllmBackend
from swerl_core.evaluate.failure_modes import as_metrics, evaluation_step, failure_rates
from swerl_core.evaluate.instances import EvalInstance, heldout_instances
from swerl_core.evaluate.metrics import summarize
from swerl_core.evaluate.predictions import harness_predictions, write_predictions
from swerl_core.evaluate.protocol import HELDOUT, SWEBENCH, EvalProtocol, evaluation_protocol
from swerl_core.evaluate.resolved import execution_summary, require_sandbox, resolve_samples
from swerl_core.evaluate.results import (
    PLOTTED,
    Baseline,
    EvalReport,
    latest_evaluation,
    log_to_mlflow,
    record_evaluation,
    report_from_row,
)
from swerl_core.evaluate.rollout import rollout
from swerl_core.evaluate.swebench import read_instance_file, run_harness, swebench_instances
from swerl_core.lineage import log_snapshot_input, model_lineage
from swerl_core.models import (
    CHAMPION,
    ResolvedModel,
    alias_version,
    experiment_id,
    mlflow_client,
    parse_model_uri,
    registry_access,
    resolve_model,
    version_metrics,
)
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.runs import read_run_id
from swerl_core.store import Store
from swerl_core.vllm_engine import engine_on_gpu

log = logging.getLogger("swerl.evaluate")
EVALUATE_EXPERIMENT = "swerl-evaluate"  # runs for evaluations of models without a training run here


def evaluate(
    settings: Settings,
    model: str,
    snapshot_id: str,
    *,
    store: Store | None = None,
    backend: GenerationBackend | None = None,
    api_key: Secret | None = None,
    run_id: str | None = None,
    progress: ProgressCallback | None = None,
    reuse: bool = False,
) -> EvalReport:
    """Evaluate ``model`` on the held-out split of snapshot ``snapshot_id``; see the module docstring.

    With ``reuse`` (and a ``store``), the newest evaluation of the same model under the same protocol is returned
    instead (``EvalReport.reused``), without generating or logging anything. A fresh evaluation records the
    snapshot's held-out split as a dataset input of its MLflow run. A snapshot missing under
    ``settings.snapshots_dir`` is fetched from shared storage when ``storage.uri`` is set.
    """
    ensure_snapshot(settings, snapshot_id)
    instances = heldout_instances(settings.snapshots_dir, snapshot_id, settings.evaluate.limit)
    say = ProgressReporter("evaluate", progress)
    if store is not None:
        protocol = evaluation_protocol(settings, snapshot_id, HELDOUT, instances)
        finished = _finish_unlogged(settings, store, model, protocol, say)
        if finished is not None:
            return finished
        row = _recorded(settings, store, model, protocol) if reuse else None
        if row is not None:
            say(f"reusing evaluation {row['id']} of {model} on {snapshot_id}")
            return report_from_row(row, protocol)
    return _evaluate(settings, model, instances, snapshot_id, HELDOUT, store, backend, api_key, run_id, progress)


def _finish_unlogged(
    settings: Settings, store: Store, model: str, protocol: EvalProtocol, say: ProgressReporter
) -> EvalReport | None:
    """The evaluation of ``model`` under ``protocol`` that was recorded and never logged (MLflow failed at its end),
    logged now; None when there is none. One whose predictions file is gone can never be logged: its row is
    dropped, with a warning, and the caller evaluates afresh."""
    row = _recorded(settings, store, model, protocol, unlogged=True)
    if row is None:
        return None
    report = report_from_row(row, protocol)
    if not report.predictions_path.is_file():
        log.warning("evaluation %s was never logged and its predictions %s are gone: evaluating again",
                    report.evaluation_id, report.predictions_path)  # fmt: skip
        store.evaluations.discard(report.evaluation_id)
        return None
    say(
        f"evaluation {report.evaluation_id} of {model} on {protocol.snapshot_id} is recorded but not logged: logging it"
    )
    return _logged(settings, store, report, _training_run(report.model_ref, report.mlflow_run_id))


def _recorded(
    settings: Settings, store: Store, model: str, protocol: EvalProtocol, unlogged: bool = False
) -> dict[str, Any] | None:
    """The newest ``evaluations`` row of ``model`` under ``protocol`` (with ``unlogged``, the newest never logged
    to MLflow), found without loading or downloading the model."""
    parsed = parse_model_uri(model)
    if parsed is None:
        local = Path(model).expanduser()
        ref = str(local.resolve()) if (local / "config.json").is_file() else model
        return latest_evaluation(store, protocol, model_ref=ref, unlogged=unlogged)
    name, alias, version = parsed
    if alias is not None:
        with registry_access(settings.tracking_uri):
            version = alias_version(mlflow_client(settings.tracking_uri), name, alias)
    return None if version is None else latest_evaluation(store, protocol, version=(name, version), unlogged=unlogged)


def evaluate_swebench(
    settings: Settings,
    model: str,
    instance_file: Path,
    *,
    store: Store | None = None,
    backend: GenerationBackend | None = None,
    api_key: Secret | None = None,
    run_id: str | None = None,
    progress: ProgressCallback | None = None,
) -> EvalReport:
    """Evaluate ``model`` on SWE-bench instances read from ``instance_file`` (code from the git mirrors)."""
    rows = read_instance_file(instance_file)
    if settings.evaluate.limit:
        rows = rows[: settings.evaluate.limit]
    instances = swebench_instances(rows, settings.mirrors_dir)
    if store is not None:
        protocol = evaluation_protocol(settings, instance_file.name, SWEBENCH, instances)
        finished = _finish_unlogged(settings, store, model, protocol, ProgressReporter("evaluate", progress))
        if finished is not None:
            return finished
    return _evaluate(
        settings, model, instances, instance_file.name, SWEBENCH, store, backend, api_key, run_id, progress,
        instance_file,
    )  # fmt: skip


def _evaluate(
    settings: Settings,
    model: str,
    instances: Sequence[EvalInstance],
    snapshot_id: str,
    split: str,
    store: Store | None,
    backend: GenerationBackend | None,
    api_key: Secret | None,
    run_id: str | None,
    progress: ProgressCallback | None,
    instance_file: Path | None = None,
) -> EvalReport:
    cfg = settings.evaluate
    say = ProgressReporter("evaluate", progress)
    client = mlflow_client(settings.tracking_uri)
    local = cfg.backend in ("transformers", "vllm")
    resolved = _resolve(client, settings, model, need_files=backend is None and local)
    if backend is None:
        if cfg.backend == "transformers":
            backend = TransformersBackend(resolved.local_dir, cfg)
        elif cfg.backend == "vllm":
            backend = VllmBackend(resolved.local_dir, cfg, on_gpu=engine_on_gpu())
        else:
            backend = EndpointBackend(cfg, cfg.endpoint_model or model, api_key)
    protocol = evaluation_protocol(settings, snapshot_id, split, instances)
    require_sandbox(settings, instances)
    say(f"evaluating {resolved.ref} on {len(instances)} {split} instances of {snapshot_id}, K={cfg.samples}")
    try:
        results, timings = rollout(instances, backend, cfg.samples, say, settings.reward.workers)
    finally:
        if isinstance(backend, VllmBackend):
            backend.close()
    started = time.perf_counter()
    results = resolve_samples(settings, instances, results, say)
    execution = execution_summary(results, time.perf_counter() - started, settings.registry.bootstrap_seed)
    evaluation_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    out_dir = settings.home / "evaluations" / evaluation_id
    predictions = write_predictions(out_dir / "predictions.jsonl", results, resolved.ref)
    resolved_rate = None if execution is None else execution.resolved_rate
    note = None if execution is None or not execution.note else execution.note
    if split == SWEBENCH and instance_file is not None:
        first = harness_predictions(out_dir / "harness_predictions.jsonl", results, resolved.ref)
        harness = run_harness(instance_file, first, resolved.ref, evaluation_id, cfg.harness_workers, out_dir)
        if execution is None:  # the official harness is the resolved rate; beside swerl's sandbox, a reference
            resolved_rate, note = harness.resolved_rate, harness.reason
        else:
            reference = (
                f"the official SWE-bench harness resolved {harness.resolved}/{harness.total}"
                if harness.ran
                else harness.reason.split(";")[0]
            )
            note = "; ".join(filter(None, (note, reference)))
    report = EvalReport(
        evaluation_id,
        resolved.ref,
        resolved.name,
        resolved.version,
        snapshot_id,
        split,
        backend.name,
        summarize(results, cfg.samples),
        predictions,
        timings.generation_s,
        timings.reward_s,
        protocol,
        run_id or resolved.run_id,  # the run to log into; None: a new run in swerl-evaluate
        resolved_rate,
        note,
        as_metrics(failure_rates(results, instances, cfg.max_new_tokens)),
        evaluation_step(resolved.local_dir),
        execution=execution,
    )
    if store is not None:
        record_evaluation(store, report)  # the record first: an MLflow failure below loses nothing
    return _logged(settings, store, report, resolved.run_id)


def _logged(settings: Settings, store: Store | None, report: EvalReport, training_run: str | None) -> EvalReport:
    """``report`` logged into MLflow (its run, else a new one in ``swerl-evaluate``), its row then marked logged.

    When MLflow fails the row stays unlogged and the error says so: the same evaluation run again finds the row
    and logs it, without evaluating again. ``training_run`` leads to the models the checkpoint was trained from.
    """
    client = mlflow_client(settings.tracking_uri)
    try:
        with registry_access(settings.tracking_uri):
            run = _run_for(client, settings, report.mlflow_run_id)
            lineage = _lineage(client, store, report.protocol, training_run) if store is not None else []
            log_to_mlflow(client, run, report, lineage, _champion(client, settings, store, report))
            if report.split == HELDOUT:
                log_snapshot_input(settings.tracking_uri, run, settings.snapshots_dir, report.snapshot_id, HELDOUT)
    except (ModelError, EvaluateError, OSError) as exc:
        if store is None:
            raise EvaluateError(str(exc)) from None
        raise EvaluateError(
            f"evaluation {report.evaluation_id} of {report.model_ref} is recorded (mean reward "
            f"{report.metrics.mean_reward:+.3f}) but not logged to MLflow: {exc}; run the same evaluation again to "
            "log it (it is not evaluated again)"
        ) from None
    if store is not None:
        store.evaluations.mark_logged(report.evaluation_id, run)
    return replace(report, mlflow_run_id=run)


def _training_run(model_ref: str, recorded_run: str | None) -> str | None:
    """The training run a recorded evaluation's model came from: a checkpoint's ``../mlflow_run_id``, else the run
    its row names."""
    local = Path(model_ref)
    return (read_run_id(local.parent) if local.is_dir() else None) or recorded_run


def _resolve(client: Any, settings: Settings, model: str, need_files: bool) -> ResolvedModel:
    from mlflow.exceptions import MlflowException

    parsed = parse_model_uri(model)
    try:
        if need_files:
            resolved = resolve_model(client, model, settings.home / "models", settings.storage)
            if parsed is None:  # a checkpoint directory (or a fetched s3:// one): its training run, if recorded
                return ResolvedModel(resolved.ref, resolved.local_dir, run_id=read_run_id(resolved.local_dir.parent))
            return resolved
        if parsed is None:
            local = Path(model)
            if (local / "config.json").is_file():  # a checkpoint served elsewhere: it still names its training run
                local = local.resolve()
                return ResolvedModel(str(local), local, run_id=read_run_id(local.parent))
            return ResolvedModel(model, local)
        name, alias, version = parsed
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        return ResolvedModel(f"models:/{name}/{mv.version}", Path(), name, str(mv.version), mv.run_id)
    except (ModelError, StorageError, MlflowException) as exc:
        raise EvaluateError(str(exc).splitlines()[0]) from None


def _run_for(client: Any, settings: Settings, run_id: str | None) -> str:
    """``run_id`` when this tracking server has it, else a fresh run in ``swerl-evaluate`` saying why."""
    from mlflow.exceptions import MlflowException

    tags: dict[str, str] = {}
    if run_id:
        try:
            if client.get_run(run_id).info.lifecycle_stage != "deleted":
                return run_id
            reason = f"run {run_id} was deleted on {client.tracking_uri}"
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise EvaluateError(
                    f"cannot read MLflow run {run_id} from {client.tracking_uri}: {str(exc).splitlines()[0]}"
                ) from None
            # A run recorded against another tracking server: log into a fresh run here, and say so.
            reason = f"run {run_id} does not exist on {client.tracking_uri}"
        log.warning("%s; logging the evaluation into a new run in %s", reason, EVALUATE_EXPERIMENT)
        tags = {"evaluate.requested_run_id": run_id, "evaluate.requested_run_unresolved": reason}
    experiment = experiment_id(client, EVALUATE_EXPERIMENT, settings.home / "mlartifacts")
    run = client.create_run(experiment, run_name=f"evaluate-{datetime.now(UTC):%Y%m%d-%H%M%S}", tags=tags)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def _champion(client: Any, settings: Settings, store: Store | None, report: EvalReport) -> Baseline | None:
    name = settings.registry.model_name
    version = alias_version(client, name, CHAMPION)
    if version is None or (report.model_name, report.model_version) == (name, version):
        return None
    label, ref = f"champion v{version}", f"models:/{name}/{version}"
    if store is not None:
        row = latest_evaluation(store, report.protocol, version=(name, version))
        if row is not None:
            return Baseline(label, ref, _plotted(row))
    tags = version_metrics(client, name, version)
    if tags.get("protocol") == report.protocol.fingerprint and all(k in tags for k in PLOTTED):
        return Baseline(label, ref, _plotted(tags))
    return None


def _lineage(client: Any, store: Store, protocol: EvalProtocol, run_id: str | None) -> list[Baseline]:
    """Evaluations under ``protocol`` of the models training run ``run_id`` descends from, oldest first.

    Each training run records its base model (param ``base_model``); a base saved by another training
    run (an SFT warm start's ``final/``) leads on to that run's base. Models never evaluated under
    ``protocol`` are left out; the evaluate flow evaluates them first
    (:func:`swerl_core.lineage.ancestor_models`).
    """
    from mlflow.exceptions import MlflowException

    try:
        ancestors = model_lineage(client, run_id)
    except MlflowException as exc:  # the evaluation itself is done: draw it without the earlier stages
        log.warning("cannot read the models run %s descends from: %s", run_id, str(exc).splitlines()[0])
        return []
    found: list[Baseline] = []
    for index, (model_dir, stage) in enumerate(ancestors):
        row = latest_evaluation(store, protocol, model_ref=str(model_dir))
        if row is not None:
            label = f"{stage or 'base'}: {model_dir.parent.name}/{model_dir.name}"
            direct = index == len(ancestors) - 1
            found.append(Baseline(label, str(model_dir), _plotted(row), direct_base=direct))
    return found


def _plotted(values: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`PLOTTED` metrics of an ``evaluations`` row or a model version's tags, as floats."""
    return {k: float(values[k]) for k in PLOTTED}
