"""The error of training, :class:`TrainError`, with a one-line reason."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class TrainError(SwerlError):
    """Training cannot start or continue; the message says what to fix (a path, a snapshot, a size)."""
