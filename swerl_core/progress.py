"""How every stage reports progress: a log record under ``swerl.<stage>`` plus one optional typed callback.

A stage builds a :class:`ProgressReporter` from the caller's :data:`ProgressCallback` and calls it with a
human line and, when it knows them, the units done, the units in all and the metrics measured at that
point (a training step's reward and loss, as numbers). The CLI renders bars from the callback; flows turn
it into Prefect logs and progress artifacts. A :class:`Progress` crosses a process boundary as its own JSON
(:meth:`Progress.as_json`, :meth:`Progress.from_json`), never as text to be parsed. Nothing here prints.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeGuard


@dataclass(frozen=True)
class Progress:
    """One progress event of a stage: ``step`` units done of ``total`` (None when unknown), a line, and metrics."""

    stage: str  # "ingest" | "curate" | "train" | "evaluate" | "register"
    step: int
    total: int | None
    message: str
    metrics: Mapping[str, float] = field(default_factory=dict)  # e.g. a training step's reward, loss, kl

    @property
    def fraction(self) -> float | None:
        """``step / total`` clipped to [0, 1], or None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(max(self.step / self.total, 0.0), 1.0)

    def as_json(self) -> str:
        """The event as one line of JSON (its fields; metrics as an object of numbers)."""
        return json.dumps({**asdict(self), "metrics": dict(self.metrics)})

    @classmethod
    def from_json(cls, text: str) -> Progress:
        """The event :meth:`as_json` wrote; raises ``ValueError`` naming the first field that is missing or wrong."""
        record: Any = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("a progress record is a JSON object")
        stage, step, total, message = (record.get(k) for k in ("stage", "step", "total", "message"))
        metrics = record.get("metrics") or {}
        if not isinstance(stage, str):
            raise ValueError("a progress record without a valid stage")
        if not _is_int(step) or not (total is None or _is_int(total)):
            raise ValueError("a progress record without an integer step (and total, when known)")
        if not isinstance(message, str):
            raise ValueError("a progress record without a valid message")
        if not isinstance(metrics, dict) or not all(_is_number(v) for v in metrics.values()):
            raise ValueError("a progress record whose metrics are not numbers")
        return cls(stage, step, total, message, {str(k): float(v) for k, v in metrics.items()})


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


ProgressCallback = Callable[[Progress], None]


class ProgressReporter:
    """Reports one stage's progress: logs each event under ``swerl.<stage>`` and hands it to the callback."""

    def __init__(self, stage: str, callback: ProgressCallback | None = None) -> None:
        self.stage = stage
        self.callback = callback
        self.log = logging.getLogger(f"swerl.{stage}")

    def __call__(
        self, message: str, step: int = 0, total: int | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Log ``message`` and pass a :class:`Progress` (``step`` of ``total``, ``metrics``) to the callback, if any."""
        self.log.info(message)
        if self.callback is not None:
            self.callback(Progress(self.stage, step, total, message, dict(metrics or {})))
