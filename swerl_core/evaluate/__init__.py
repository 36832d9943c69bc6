"""Evaluation: a checkpoint's rollouts on the held-out split of a snapshot (and on SWE-bench Verified).

The package owns generation backends (:mod:`.backends`), the safe application of predicted edits in a
temporary copy (:mod:`.checkout`), metrics (:mod:`.metrics`), predictions files (:mod:`.predictions`),
the ``evaluations`` results (:mod:`.results`) and the entry function
:func:`swerl_core.evaluate.evaluation.evaluate`. It never executes model output, never schedules
anything (the CLI and schedulers do) and never moves registry aliases (:mod:`swerl_core.registry` does).

Importing this package is cheap: torch, transformers and MLflow load only inside the modules that use them.
"""

from __future__ import annotations

from swerl_core.errors import SwerlError


class EvaluateError(SwerlError):
    """An evaluation cannot run (bad model reference, unreachable endpoint, missing snapshot or mirror)."""
