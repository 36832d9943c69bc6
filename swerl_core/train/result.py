"""The one record of a training run, :class:`TrainResult`, and its JSON form for crossing a process boundary.

Whatever ran the stage — the trainer in this process, a child process the local launcher followed and resumed,
or the pods of a Kubernetes Job — the caller gets a :class:`TrainResult`. A training process prints it as one JSON
line (:meth:`TrainResult.as_json`) and its launcher reads it back (:meth:`TrainResult.from_json`), adding what only
the launcher knows (restarts, the whole wall time; the Kubernetes launcher translates paths). This module never
trains or launches anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swerl_core.train.config import Stage

# The fields a result record must carry, checked in this order (the path-like and the identifying ones first).
_REQUIRED = (
    "run_name",
    "checkpoint_dir",
    "model_dir",
    "snapshot_id",
    "steps",
    "stage",
    "base_model",
    "train_examples",
    "dropped_too_long",
    "seconds",
)


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: where its checkpoints are, how far it got, its last metrics, how it was resumed."""

    run_name: str
    mlflow_run_id: str | None  # None on non-main processes of a multi-process job
    stage: Stage
    snapshot_id: str
    base_model: str
    checkpoint_dir: Path  # $SWERL_HOME/checkpoints/<run>/ (checkpoint-N/ folders and final/)
    model_dir: Path  # checkpoint_dir / "final": consolidated weights + tokenizer
    steps: int  # global step reached
    train_examples: int
    dropped_too_long: int
    seconds: float
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest value of each logged metric
    checkpoint_uri: str | None = None  # final/ on shared storage (storage.uri), None when local only
    # Each global step the run continued from, in order: asked for (resume) or after a launcher restarted it.
    resumed_from_steps: tuple[int, ...] = ()
    restarts: int = 0  # how many times a launcher restarted a training process that died
    reused: bool = False  # a run that had finished this recipe before, returned as it was (TrainRequest.reuse)

    def summary(self) -> str:
        """One line: the run, its steps, and how it came about (resumed, reused)."""
        line = f"{self.run_name}: {self.steps} steps"
        if self.resumed_from_steps:
            line += f", resumed from step {', '.join(map(str, self.resumed_from_steps))}"
        return line + (" (finished before: reused, not trained again)" if self.reused else "")

    def as_json(self) -> str:
        """The result as one line of JSON (paths as strings)."""
        record = asdict(self)
        record.update(
            checkpoint_dir=str(self.checkpoint_dir),
            model_dir=str(self.model_dir),
            metrics=dict(self.metrics),
            resumed_from_steps=list(self.resumed_from_steps),
        )
        return json.dumps(record)

    @classmethod
    def from_json(cls, text: str) -> TrainResult:
        """The result :meth:`as_json` wrote; raises ``ValueError`` saying what the record lacks or holds wrongly."""
        record: Any = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("is not a JSON object")
        lacking = [key for key in _REQUIRED if key not in record]
        if lacking:
            raise ValueError(f"lacks {', '.join(lacking)}")
        if not _is_int(record["steps"]):
            raise ValueError("lacks an integer steps")
        resumed = record.get("resumed_from_steps") or []
        if not isinstance(resumed, list) or not all(_is_int(s) for s in resumed):
            raise ValueError("lacks integer resumed_from_steps")
        if record["stage"] not in ("sft", "grpo"):
            raise ValueError(f"names stage {str(record['stage'])[:20]!r}, not sft or grpo")
        return cls(
            run_name=str(record["run_name"]),
            mlflow_run_id=record.get("mlflow_run_id"),
            stage=record["stage"],
            snapshot_id=str(record["snapshot_id"]),
            base_model=str(record["base_model"]),
            checkpoint_dir=Path(record["checkpoint_dir"]),
            model_dir=Path(record["model_dir"]),
            steps=record["steps"],
            train_examples=int(record["train_examples"]),
            dropped_too_long=int(record["dropped_too_long"]),
            seconds=float(record["seconds"]),
            metrics={str(k): float(v) for k, v in (record.get("metrics") or {}).items()},
            checkpoint_uri=record.get("checkpoint_uri"),
            resumed_from_steps=tuple(resumed),
            restarts=int(record.get("restarts") or 0),
            reused=record.get("reused") is True,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
