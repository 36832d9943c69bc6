"""How every stage reports progress: a log record under ``swerl.<stage>`` plus one optional typed callback.

A stage builds a :class:`ProgressReporter` from the caller's :data:`ProgressCallback` and calls it with a
human line and, when it knows them, the units done and the units in all. The CLI renders bars from
the callback; flows turn it into Prefect logs and progress artifacts. Nothing here prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress event of a stage: ``step`` units done of ``total`` (None when unknown), and a line."""

    stage: str  # "ingest" | "curate" | "train" | "evaluate" | "register"
    step: int
    total: int | None
    message: str

    @property
    def fraction(self) -> float | None:
        """``step / total`` clipped to [0, 1], or None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(max(self.step / self.total, 0.0), 1.0)


ProgressCallback = Callable[[Progress], None]


class ProgressReporter:
    """Reports one stage's progress: logs each event under ``swerl.<stage>`` and hands it to the callback."""

    def __init__(self, stage: str, callback: ProgressCallback | None = None) -> None:
        self.stage = stage
        self.callback = callback
        self.log = logging.getLogger(f"swerl.{stage}")

    def __call__(self, message: str, step: int = 0, total: int | None = None) -> None:
        """Log ``message`` and pass a :class:`Progress` (``step`` of ``total``) to the callback, if any."""
        self.log.info(message)
        if self.callback is not None:
            self.callback(Progress(self.stage, step, total, message))
