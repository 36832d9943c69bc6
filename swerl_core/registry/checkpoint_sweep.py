"""Every checkpoint of a training run on the held-out split, once each, and the best one to the registry.

:func:`score_checkpoint` evaluates one checkpoint unless an evaluation of it under the same protocol
(snapshot, K, instances, decoding) is already recorded, in which case that one is reused; a file lock
beside the checkpoint makes a second caller wait for the first and then reuse its evaluation.
:func:`score_lineage` does the same for the models a run was trained from, so that every checkpoint's
comparison plot shows the stages before it. :func:`best_checkpoint` picks the highest mean reward (a
later step wins a tie).
:func:`register_run` registers the chosen checkpoint unless the training run already has a
registered version, holding a per-run lock so that two callers (a parent flow and a triggered one)
never register the same run twice. Deciding *when* to run these belongs to the scheduler.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from swerl_core.config import Settings
from swerl_core.evaluate import EvaluateError
from swerl_core.lineage import log_snapshot_input
from swerl_core.progress import ProgressCallback
from swerl_core.registry.gate_report import gate_markdown
from swerl_core.runs import FINAL_DIR, checkpoint_step, read_run_id

if TYPE_CHECKING:
    from swerl_core.store import Store

REGISTER_LOCK = ".register.lock"
log = logging.getLogger("swerl.evaluate")


@dataclass(frozen=True)
class CheckpointScore:
    """The held-out evaluation of one checkpoint (fresh or reused)."""

    checkpoint: Path
    step: int | None  # None for final/
    evaluation_id: str
    mean_reward: float
    format_error_rate: float
    apply_rate: float
    exact_match_rate: float
    n_instances: int
    reused: bool


@dataclass(frozen=True)
class RunRegistration:
    """The outcome of :func:`register_run`: the version of the run, and whether this call created it."""

    name: str
    version: str
    checkpoint: Path
    verdict: str
    reason: str
    aliases: tuple[str, ...]
    created: bool
    tags: Mapping[str, str]  # the version's tags: provenance, eval.* and gate.* (candidate vs champion)
    evidence: str = ""  # the paired comparison as Markdown (interval, test, per instance) when this call judged it


def score_checkpoint(
    settings: Settings, checkpoint: Path, snapshot_id: str, progress: ProgressCallback | None = None
) -> CheckpointScore:
    """The held-out evaluation of ``checkpoint`` on ``snapshot_id``: reused under the same protocol, else run now."""
    from filelock import FileLock

    from swerl_core.evaluate import EvaluateRequest
    from swerl_core.evaluate import run as evaluate
    from swerl_core.evaluate.protocol import heldout_protocol
    from swerl_core.evaluate.results import latest_evaluation

    checkpoint = Path(checkpoint).resolve()
    step = checkpoint_step(checkpoint)
    protocol = heldout_protocol(settings, snapshot_id)
    # Two callers on one checkpoint (a parent flow and a triggered one): the second waits, then reuses. The
    # lock lives under SWERL_HOME: a base model's folder may be read-only (a shared or Hugging Face cache).
    digest = hashlib.sha256(str(checkpoint).encode()).hexdigest()[:16]
    locks = settings.home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"evaluate-{digest}.lock"))
    with lock:
        row = latest_evaluation(_store(settings), protocol, model_ref=str(checkpoint))
        if row is not None:
            return CheckpointScore(
                checkpoint,
                step,
                str(row["id"]),
                float(row["mean_reward"]),
                float(row["format_error_rate"]),
                float(row["apply_rate"]),
                float(row["exact_match_rate"]),
                int(row["n_instances"]),
                reused=True,
            )
        report = evaluate(settings, EvaluateRequest(str(checkpoint), snapshot_id), progress)
        if report.mlflow_run_id:
            tracking, snapshots = settings.tracking_uri, settings.snapshots_dir
            log_snapshot_input(tracking, report.mlflow_run_id, snapshots, snapshot_id, "heldout")
    m = report.metrics
    return CheckpointScore(
        checkpoint,
        step,
        report.evaluation_id,
        m.mean_reward,
        m.format_error_rate,
        m.apply_rate,
        m.exact_match_rate,
        m.n_instances,
        reused=False,
    )


def score_lineage(
    settings: Settings, run_dir: Path, snapshot_id: str, progress: ProgressCallback | None = None
) -> list[CheckpointScore]:
    """:func:`score_checkpoint` for each model the training run in ``run_dir`` descends from, oldest first.

    Empty when ``evaluate.lineage`` is off or the run recorded no MLflow run (see
    :func:`swerl_core.lineage.model_lineage` for where the walk stops). A model that cannot be
    evaluated (its weights deleted since) is logged and left out; the others are still evaluated.
    """
    from swerl_core.lineage import model_lineage
    from swerl_core.models import mlflow_client

    if not settings.evaluate.lineage:
        return []
    scores = []
    for model_dir, _ in model_lineage(mlflow_client(settings.tracking_uri), read_run_id(run_dir)):
        try:
            scores.append(score_checkpoint(settings, model_dir, snapshot_id, progress))
        except EvaluateError as exc:
            log.warning("left out of the comparison: %s could not be evaluated: %s", model_dir, exc)
    return scores


def _store(settings: Settings) -> Store:
    """The store shared with other flows: each read or write holds it only for its own duration."""
    from swerl_core.store import Store

    return Store.for_settings(settings)


def best_checkpoint(scores: Sequence[CheckpointScore]) -> CheckpointScore:
    """The checkpoint with the highest mean reward; among equals the latest step (``final/`` counts as last)."""
    if not scores:
        raise EvaluateError("no checkpoint was evaluated: the training run saved none")

    def order(score: CheckpointScore) -> tuple[float, int]:
        step = score.step if score.step is not None else (1 << 62 if score.checkpoint.name == FINAL_DIR else -1)
        return score.mean_reward, step

    return max(scores, key=order)


def registered_version(settings: Settings, run_dir: Path) -> str | None:
    """The model version already registered from the training run in ``run_dir`` (by its MLflow run), if any."""
    from swerl_core.models import mlflow_client

    run_id = read_run_id(run_dir)
    if run_id is None:
        return None
    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    found = [mv for mv in client.search_model_versions(f"name = '{name}'") if mv.run_id == run_id]
    return str(max(int(mv.version) for mv in found)) if found else None


def register_run(
    settings: Settings, checkpoint: Path, snapshot_id: str, who: str, progress: ProgressCallback | None = None
) -> RunRegistration:
    """Register ``checkpoint`` (gate against the champion, aliases by policy) unless its run already has a version."""
    from filelock import FileLock

    from swerl_core.registry import RegisterRequest
    from swerl_core.registry import run as register

    checkpoint = Path(checkpoint).resolve()
    run_dir = checkpoint.parent
    with FileLock(str(run_dir / REGISTER_LOCK), timeout=settings.registry.lock_timeout_s):
        existing = registered_version(settings, run_dir)
        if existing is not None:
            return _registration(settings, existing, checkpoint, created=False)
        done = register(settings, RegisterRequest(checkpoint, snapshot_id, who), progress)
        _describe(settings, done.version, checkpoint, snapshot_id)
    registration = _registration(settings, done.version, checkpoint, created=True)
    return replace(registration, evidence=gate_markdown(done.verdict))


MODEL_DESCRIPTION = (
    "The SWE-RL repair policy swerl keeps training on freshly merged GitHub pull requests. Each version is a "
    "checkpoint evaluated on held-out pull requests and judged by the registry gate against the champion "
    "(its tags hold the evaluation, the verdict and the provenance); serve models:/{name}@champion."
)


def _describe(settings: Settings, version: str, checkpoint: Path, snapshot_id: str) -> None:
    """Descriptions for the MLflow UI: the registered model's (once) and the new version's."""
    from swerl_core.models import mlflow_client

    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTION.format(name=name))
    tags = client.get_model_version(name, version).tags
    text = (
        f"Checkpoint {checkpoint.name} of training run {checkpoint.parent.name}, evaluated on the held-out split "
        f"of snapshot {snapshot_id}: gate {tags.get('gate.verdict', 'pending')} ({tags.get('gate.reason', '')})."
    )
    client.update_model_version(name, version, description=text)


def _registration(settings: Settings, version: str, checkpoint: Path, created: bool) -> RunRegistration:
    from swerl_core.models import mlflow_client

    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    mv = client.get_model_version(name, version)
    aliases = tuple(sorted(a for a, v in client.get_registered_model(name).aliases.items() if str(v) == version))
    tags = dict(mv.tags)
    verdict, reason = tags.get("gate.verdict", "pending"), tags.get("gate.reason", "")
    return RunRegistration(name, version, checkpoint, verdict, reason, aliases, created, tags)
