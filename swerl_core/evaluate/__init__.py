"""Evaluation: a checkpoint's rollouts on the held-out split of a snapshot (and on SWE-bench Verified).

The package owns generation backends (:mod:`.backends`), the safe application of predicted edits in a
temporary copy (:mod:`.checkout`), metrics (:mod:`.metrics`), predictions files (:mod:`.predictions`),
the ``evaluations`` results (:mod:`.results`) and which of a run's evaluated checkpoints is best
(:mod:`.selection`). The entry is :func:`run` (an :class:`EvaluateRequest` in,
an :class:`~.results.EvalReport` out); the work happens in :func:`.evaluation.evaluate`. It never
executes model output, never schedules anything (the CLI and schedulers do) and never moves registry
aliases (:mod:`swerl_core.registry` does).

Importing this package is cheap: torch, transformers and MLflow load only inside the modules that use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swerl_core.evaluate.errors import EvaluateError
from swerl_core.progress import ProgressCallback

if TYPE_CHECKING:
    from swerl_core.config import Secret, Settings
    from swerl_core.evaluate.results import EvalReport


@dataclass(frozen=True)
class EvaluateRequest:
    """A model on a snapshot's held-out split.

    ``model`` is a checkpoint directory, ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (with the
    endpoint backend: the served model's name). ``run_id`` is the MLflow run to log into (default: the
    checkpoint's own run); ``api_key`` authenticates to the endpoint backend, if it needs one. With ``reuse``, an
    evaluation of the same model recorded under the same protocol (snapshot, K, instances, decoding) is returned
    instead of running a new one (its report says ``reused``).
    """

    model: str
    snapshot_id: str
    run_id: str | None = None
    api_key: Secret | None = None
    reuse: bool = False


def run(settings: Settings, request: EvaluateRequest, progress: ProgressCallback | None = None) -> EvalReport:
    """Evaluate ``request.model`` on the held-out split of ``request.snapshot_id`` (or reuse its evaluation).

    Writes the predictions under ``settings.home/evaluations/<id>/``, the metrics into MLflow and one
    ``evaluations`` row into the shared store: the only write, at the end (nothing is held open while
    generating). Raises :class:`EvaluateError` (or ``SnapshotError``) with a one-line reason.
    """
    from swerl_core.evaluate.evaluation import evaluate
    from swerl_core.store import Store

    store = Store.for_settings(settings)
    return evaluate(
        settings,
        request.model,
        request.snapshot_id,
        store=store,
        api_key=request.api_key,
        run_id=request.run_id,
        progress=progress,
        reuse=request.reuse,
    )


def __getattr__(name: str) -> Any:
    # The result type lives beside the results writer; load it only when asked for.
    if name == "EvalReport":
        from swerl_core.evaluate.results import EvalReport

        return EvalReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EvalReport", "EvaluateError", "EvaluateRequest", "run"]
