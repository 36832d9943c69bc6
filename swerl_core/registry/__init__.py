"""Registry: checkpoints as MLflow model versions, the champion/challenger gate, aliases, promote and rollback.

The package owns the gate (:mod:`.gate`, pure), model versions and their provenance tags
(:mod:`.versions`), alias moves with their who/why/when log (:mod:`.aliases`) and the registration
entry :func:`swerl_core.registry.register.register`. Everything goes through an explicit
:class:`mlflow.MlflowClient` bound to swerl's tracking URI, never MLflow's global state. It never
generates or scores (:mod:`swerl_core.evaluate` does) and never lets a version that failed the gate
become champion unless forced with a reason.
"""

from __future__ import annotations

from swerl_core.errors import SwerlError


class RegistryError(SwerlError):
    """A registry operation was refused or failed (failed gate, unknown version, no previous champion)."""
