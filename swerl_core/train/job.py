"""A training stage handed to a launcher, and what the launcher reports back: the types both launchers share.

A :class:`TrainJob` names a recipe, stage, snapshot and run; a launcher — a local child process
(:mod:`.followed`) or a Kubernetes Job (:mod:`.k8s`) — runs ``python -m swerl_core.train.followed`` for it,
reads the step records and the result line that process prints (each line starts with :data:`STEP_MARK` or
:data:`RESULT_MARK`, then JSON), and returns a :class:`FollowedRun`. This module never starts anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from swerl_core.runs import new_run_name
from swerl_core.train.config import Stage, load_train_config

STEP_MARK = "SWERL-STEP "
RESULT_MARK = "SWERL-RESULT "


@dataclass(frozen=True)
class TrainJob:
    """One training stage to run in its own process: recipe file, stage, snapshot and the run's name."""

    recipe: Path
    stage: Stage
    snapshot_id: str
    run_name: str
    base_model: str | None = None


@dataclass(frozen=True)
class TrainStep:
    """A step the training process reported: global step, planned total and the metrics logged at that step."""

    step: int
    total: int | None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FollowedRun:
    """What a launcher saw: the training process's result fields and how often it was resumed."""

    run_name: str
    run_dir: Path
    model_dir: Path
    mlflow_run_id: str | None
    snapshot_id: str
    steps: int
    metrics: Mapping[str, float]
    restarts: int
    resumed_from_steps: tuple[int, ...]
    checkpoint_uri: str | None = None  # final/ on shared storage (storage.uri), None when local only


StepCallback = Callable[[TrainStep], None]


def job_for(recipe: Path, stage: Stage, snapshot_id: str, base_model: str | None = None) -> TrainJob:
    """A :class:`TrainJob` with a fresh run name (recipe-stage-snapshot-timestamp)."""
    name = load_train_config(recipe).name
    return TrainJob(Path(recipe), stage, snapshot_id, new_run_name(name, stage, snapshot_id), base_model)
