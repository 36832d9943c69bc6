"""Training run directories under ``$SWERL_HOME/checkpoints/<run>/``: layout, names, checkpoints, finished runs.

A run directory is ``<recipe>-<stage>-<snapshot>-<YYYYmmdd-HHMMSS>/``. It holds TRL/Transformers
``checkpoint-<step>/`` folders (HF safetensors weights plus optimizer, scheduler and RNG state, so
``--resume`` continues exactly), the MLflow run id (:data:`RUN_ID_FILE`) and, when a run ends, ``final/`` —
the consolidated model and tokenizer that evaluation and registration load; a run counts as finished once
it holds ``final/``. A checkpoint counts only once its ``trainer_state.json`` is readable: Transformers
writes that file last, so a folder without it is the remains of a process killed mid-save and is removed
before resuming.

Training writes this layout; evaluation, the registry and the schedulers read it (which checkpoints a run
saved, which snapshot a recipe was last trained on). This module never starts, trains or evaluates a run.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from swerl_core.errors import RunError

FINAL_DIR = "final"
RUN_ID_FILE = "mlflow_run_id"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_STAMP = re.compile(r"-(\d{8}-\d{6})$")


def run_prefix(recipe: str, stage: str, snapshot_id: str) -> str:
    """The stable part of a run name: recipe, stage and snapshot."""
    return f"{recipe}-{stage}-{snapshot_id}"


def new_run_name(recipe: str, stage: str, snapshot_id: str, now: datetime | None = None) -> str:
    """A fresh run name: :func:`run_prefix` plus a UTC timestamp."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{run_prefix(recipe, stage, snapshot_id)}-{stamp}"


def latest_run(checkpoints_dir: Path, prefix: str) -> str:
    """Name of the newest run whose name starts with ``prefix``; raises :class:`RunError` if none."""
    runs = sorted(p.name for p in Path(checkpoints_dir).glob(f"{prefix}-*") if p.is_dir())
    if not runs:
        raise RunError(f"nothing to resume: no run {prefix}-* under {checkpoints_dir}")
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


@dataclass(frozen=True)
class RunDirectory:
    """A training run's folder on disk and what its name says: the snapshot it trained on and when it started.

    What the run *did* (steps, metrics, its MLflow run) is the trainer's result record, not this.
    """

    path: Path
    snapshot_id: str
    stamp: str  # YYYYmmdd-HHMMSS (UTC), from the run name

    @property
    def name(self) -> str:
        """The run's name: its folder's name."""
        return self.path.name


def finished_runs(checkpoints_dir: Path, recipe: str, stage: str = "grpo") -> list[RunDirectory]:
    """Finished runs of ``recipe`` at ``stage`` (those with ``final/``), oldest first."""
    prefix = run_prefix(recipe, stage, "")
    runs = []
    for path in Path(checkpoints_dir).glob(f"{prefix}*"):
        match = _finished(path)
        if match is not None:
            runs.append(RunDirectory(path, path.name[len(prefix) : match.start()], match[1]))
    return sorted(runs, key=lambda r: (r.stamp, r.name))


def newest_finished_run(checkpoints_dir: Path) -> Path | None:
    """The directory of the finished run, of any recipe and stage, that started last; ``None`` when there is none."""
    stamped = [(match[1], path.name) for path in Path(checkpoints_dir).glob("*") if (match := _finished(path))]
    return Path(checkpoints_dir) / max(stamped)[1] if stamped else None


def _finished(run_dir: Path) -> re.Match[str] | None:
    """The time stamp in a finished run's name (one that holds ``final/``); ``None`` for anything else."""
    match = _STAMP.search(run_dir.name)
    return match if match is not None and (run_dir / FINAL_DIR / "config.json").is_file() else None


def last_trained_snapshot(checkpoints_dir: Path, recipe: str, stage: str = "grpo") -> RunDirectory | None:
    """The newest finished run of ``recipe`` at ``stage``, or ``None`` when it was never trained."""
    runs = finished_runs(checkpoints_dir, recipe, stage)
    return runs[-1] if runs else None


def finished_run_on(checkpoints_dir: Path, recipe: str, snapshot_id: str, stage: str = "grpo") -> RunDirectory:
    """The newest finished run of ``recipe`` on ``snapshot_id``; raises :class:`RunError` when there is none."""
    runs = [r for r in finished_runs(checkpoints_dir, recipe, stage) if r.snapshot_id == snapshot_id]
    if not runs:
        raise RunError(f"no finished {stage} run of recipe {recipe!r} on snapshot {snapshot_id} in {checkpoints_dir}")
    return runs[-1]


def unchanged_since_training(checkpoints_dir: Path, recipe: str, snapshot_id: str) -> RunDirectory | None:
    """The run that last trained ``recipe`` when it trained on ``snapshot_id`` (nothing new to learn), else ``None``."""
    last = last_trained_snapshot(checkpoints_dir, recipe)
    return last if last is not None and last.snapshot_id == snapshot_id else None


def run_checkpoints(run_dir: Path) -> list[Path]:
    """The model folders a run saved, by step: every complete ``checkpoint-N``, and ``final/`` unless it repeats one.

    ``final/`` holds the weights of the last step; when a complete checkpoint was saved at that very
    step (the trainer's ``max_steps``), it is the same model and only the checkpoint is listed.
    """
    steps = sorted((step, p) for p in Path(run_dir).glob("checkpoint-*") if (step := checkpoint_step(p)) is not None)
    found = [p for _, p in steps]
    final = Path(run_dir) / FINAL_DIR
    if (final / "config.json").is_file() and not (steps and _saved_at_last_step(steps[-1][1])):
        found.append(final)
    return found


def saved_order(model_dir: Path) -> int:
    """Where a model folder of a run comes in training: ``N`` for ``checkpoint-N``, after every checkpoint for
    ``final/``, and before them all for any other folder (a base model)."""
    match = _CHECKPOINT.match(Path(model_dir).name)
    if match is not None:
        return int(match[1])
    return 1 << 62 if Path(model_dir).name == FINAL_DIR else -1


def _saved_at_last_step(checkpoint: Path) -> bool:
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return bool(state.get("max_steps")) and state.get("global_step") == state.get("max_steps")
