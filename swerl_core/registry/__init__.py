"""Registry: checkpoints as MLflow model versions, the champion/challenger gate, aliases, promote and rollback.

The package owns the gate (:mod:`.gate`, pure), model versions and their provenance tags (:mod:`.versions`), alias
moves with their who/why/when log (:mod:`.aliases`), the registration step (:mod:`.register`: version, gate and
aliases in one step) and the gate's evidence, candidate and champion (or its base) evaluated under one protocol
(:mod:`.evidence`, the path :func:`run` takes). The entry is :func:`run` (a :class:`RegisterRequest` in, a
:class:`~.register.Registration` out); a training run is registered once, by design: registering it again returns
its version (no lock keeps two callers apart; one caller owns each run). Everything goes through an explicit
:class:`mlflow.MlflowClient` bound to swerl's tracking URI, never MLflow's global state. It never generates or
scores itself (it calls :mod:`swerl_core.evaluate`, which never imports this package) and never lets a version that
failed the gate become champion unless forced with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.progress import ProgressCallback
from swerl_core.registry.errors import RegistryError

if TYPE_CHECKING:
    from swerl_core.config import Settings
    from swerl_core.registry.register import Registration


@dataclass(frozen=True)
class RegisterRequest:
    """A consolidated checkpoint to register, the snapshot whose held-out split the gate compares on, and who asks."""

    checkpoint: Path
    snapshot_id: str
    who: str | None = None  # None: SWERL_USER, else the login name


def run(settings: Settings, request: RegisterRequest, progress: ProgressCallback | None = None) -> Registration:
    """Evaluate (or reuse an evaluation of) ``request.checkpoint``, register it and gate it against the champion;
    a checkpoint whose training run already has a version gets that version back (``created`` False).

    Passing versions get ``challenger`` (and ``champion`` under ``registry.policy: auto``). Raises
    :class:`RegistryError` (or the evaluation's error) with a one-line reason.
    """
    from swerl_core.registry.evidence import evaluate_and_register
    from swerl_core.store import Store

    store = Store.for_settings(settings)
    return evaluate_and_register(
        settings, store, Path(request.checkpoint), request.snapshot_id, who=request.who, progress=progress
    )


def __getattr__(name: str) -> Any:
    # The result type lives beside the registration step (MLflow); load it only when asked for.
    if name == "Registration":
        from swerl_core.registry.register import Registration

        return Registration
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RegisterRequest", "Registration", "RegistryError", "run"]
