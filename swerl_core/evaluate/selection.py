"""Which of a training run's evaluated checkpoints to register: a pure choice over evaluation reports.

The highest held-out mean reward wins; among equals the later checkpoint (``final/`` counts as the last), since
it trained longer on the same data. This module reads and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from swerl_core.evaluate.errors import EvaluateError
from swerl_core.evaluate.results import EvalReport
from swerl_core.runs import saved_order


def best_checkpoint(reports: Sequence[EvalReport]) -> EvalReport:
    """The report of the best checkpoint among ``reports`` (see the module docstring).

    Raises :class:`EvaluateError` when there is none: the run saved no checkpoint.
    """
    if not reports:
        raise EvaluateError("no checkpoint was evaluated: the training run saved none")
    return max(reports, key=lambda report: (report.metrics.mean_reward, saved_order(Path(report.model_ref))))
