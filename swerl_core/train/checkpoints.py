"""Run directories and checkpoints under ``$SWERL_HOME/checkpoints/<run>/``.

A run directory holds TRL/Transformers ``checkpoint-<step>/`` folders (HF safetensors weights plus
optimizer, scheduler and RNG state, so ``--resume`` continues exactly) and, when a run ends,
``final/`` — the consolidated model and tokenizer that evaluation and registration load. A checkpoint
counts only once its ``trainer_state.json`` is readable: Transformers writes that file last, so a
folder without it is the remains of a process killed mid-save and is removed before resuming.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from swerl_core.train import TrainError

FINAL_DIR = "final"
RUN_ID_FILE = "mlflow_run_id"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def run_prefix(recipe: str, stage: str, snapshot_id: str) -> str:
    """The stable part of a run name: recipe, stage and snapshot."""
    return f"{recipe}-{stage}-{snapshot_id}"


def new_run_name(recipe: str, stage: str, snapshot_id: str, now: datetime | None = None) -> str:
    """A fresh run name: :func:`run_prefix` plus a UTC timestamp."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{run_prefix(recipe, stage, snapshot_id)}-{stamp}"


def latest_run(checkpoints_dir: Path, prefix: str) -> str:
    """Name of the newest run whose name starts with ``prefix``; raises :class:`TrainError` if none."""
    runs = sorted(p.name for p in Path(checkpoints_dir).glob(f"{prefix}-*") if p.is_dir())
    if not runs:
        raise TrainError(f"nothing to resume: no run {prefix}-* under {checkpoints_dir}")
    return runs[-1]


def checkpoint_step(path: Path) -> int | None:
    """The global step of a complete checkpoint folder, or ``None`` if it is incomplete or not one."""
    match = _CHECKPOINT.match(path.name)
    if match is None:
        return None
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return int(match[1]) if state.get("global_step") == int(match[1]) else None


def last_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``run_dir``, or ``None``."""
    complete = [(step, p) for p in Path(run_dir).glob("checkpoint-*") if (step := checkpoint_step(p)) is not None]
    return max(complete)[1] if complete else None


def remove_incomplete_checkpoints(run_dir: Path) -> list[Path]:
    """Delete ``checkpoint-*`` folders that a killed process left half-written; returns what was removed."""
    removed = []
    for path in sorted(Path(run_dir).glob("checkpoint-*")):
        if path.is_dir() and _CHECKPOINT.match(path.name) and checkpoint_step(path) is None:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def read_run_id(run_dir: Path) -> str | None:
    """The MLflow run id recorded for this run directory, if any."""
    path = Path(run_dir) / RUN_ID_FILE
    return path.read_text(encoding="utf-8").strip() or None if path.exists() else None


def write_run_id(run_dir: Path, run_id: str) -> None:
    """Record the MLflow run id so a resumed run keeps logging to the same MLflow run."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / RUN_ID_FILE).write_text(run_id + "\n", encoding="utf-8")
