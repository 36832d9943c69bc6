"""The error of evaluation, :class:`EvaluateError`, with a one-line reason."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class EvaluateError(SwerlError):
    """An evaluation cannot run (bad model reference, unreachable endpoint, missing snapshot or mirror)."""
