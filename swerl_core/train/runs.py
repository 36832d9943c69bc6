"""Finished training runs on disk: which snapshot a recipe was last trained on, and a run's checkpoints.

A run directory is ``$SWERL_HOME/checkpoints/<recipe>-<stage>-<snapshot>-<YYYYmmdd-HHMMSS>/`` (see
:mod:`.checkpoints`); a run counts as finished once it holds ``final/``. These answers let a
scheduler decide whether retraining has anything new to learn from and which checkpoints to
evaluate; this module only reads the checkpoint tree and never starts or changes a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from swerl_core.train import TrainError
from swerl_core.train.checkpoints import FINAL_DIR, checkpoint_step, run_prefix

_STAMP = re.compile(r"-(\d{8}-\d{6})$")


@dataclass(frozen=True)
class TrainedRun:
    """A finished training run: its name, directory, snapshot and the time stamped into its name."""

    name: str
    run_dir: Path
    snapshot_id: str
    stamp: str  # YYYYmmdd-HHMMSS (UTC), from the run name


def finished_runs(checkpoints_dir: Path, recipe: str, stage: str = "grpo") -> list[TrainedRun]:
    """Finished runs of ``recipe`` at ``stage`` (those with ``final/``), oldest first."""
    prefix = run_prefix(recipe, stage, "")
    runs = []
    for path in Path(checkpoints_dir).glob(f"{prefix}*"):
        match = _finished(path)
        if match is not None:
            runs.append(TrainedRun(path.name, path, path.name[len(prefix) : match.start()], match[1]))
    return sorted(runs, key=lambda r: (r.stamp, r.name))


def newest_finished_run(checkpoints_dir: Path) -> Path | None:
    """The directory of the finished run, of any recipe and stage, that started last; ``None`` when there is none."""
    stamped = [(match[1], path.name) for path in Path(checkpoints_dir).glob("*") if (match := _finished(path))]
    return Path(checkpoints_dir) / max(stamped)[1] if stamped else None


def _finished(run_dir: Path) -> re.Match[str] | None:
    """The time stamp in a finished run's name (one that holds ``final/``); ``None`` for anything else."""
    match = _STAMP.search(run_dir.name)
    return match if match is not None and (run_dir / FINAL_DIR / "config.json").is_file() else None


def last_trained_snapshot(checkpoints_dir: Path, recipe: str, stage: str = "grpo") -> TrainedRun | None:
    """The newest finished run of ``recipe`` at ``stage``, or ``None`` when it was never trained."""
    runs = finished_runs(checkpoints_dir, recipe, stage)
    return runs[-1] if runs else None


def finished_run_on(checkpoints_dir: Path, recipe: str, snapshot_id: str, stage: str = "grpo") -> TrainedRun:
    """The newest finished run of ``recipe`` on ``snapshot_id``; raises :class:`TrainError` when there is none."""
    runs = [r for r in finished_runs(checkpoints_dir, recipe, stage) if r.snapshot_id == snapshot_id]
    if not runs:
        raise TrainError(f"no finished {stage} run of recipe {recipe!r} on snapshot {snapshot_id} in {checkpoints_dir}")
    return runs[-1]


def unchanged_since_training(checkpoints_dir: Path, recipe: str, snapshot_id: str) -> TrainedRun | None:
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


def _saved_at_last_step(checkpoint: Path) -> bool:
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return bool(state.get("max_steps")) and state.get("global_step") == state.get("max_steps")
