"""Training: GRPO and SFT recipes over TRL on the SWE-RL reward, and the launchers that run a stage.

The package owns the recipe config (:mod:`.config`), the mapping onto TRL's ``GRPOConfig`` /
``SFTConfig`` (:mod:`.trl_args`), the dataset from a snapshot (:mod:`.snapshot`), the reward adapter
(:mod:`.reward_fn`), MLflow tracking (:mod:`.tracking`) and DeepSpeed's process setup (:mod:`.distributed`).
The entry is :func:`run` (a :class:`TrainRequest` in, a :class:`~.trainer.TrainResult` out); the work happens
in :func:`.trainer.train`. A scheduler runs a stage in its own process through :mod:`.launcher`: locally
(:mod:`.followed`) or as a Kubernetes Job (:mod:`.k8s`), both on the job types of :mod:`.job`. The run
directory layout and lineage it writes are shared modules (:mod:`swerl_core.runs`, :mod:`swerl_core.lineage`),
read by evaluation and the registry. It never schedules anything (flows do) and never downloads weights or
data itself; the offline tiny models are the demo's (:mod:`swerl_core.demo.tiny_model`).

Importing this package is cheap: torch, transformers, TRL and MLflow load only inside the
modules that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from swerl_core.progress import ProgressCallback
from swerl_core.train.errors import TrainError

if TYPE_CHECKING:
    from swerl_core.config import Settings
    from swerl_core.train.config import TrainConfig
    from swerl_core.train.trainer import TrainResult


@dataclass(frozen=True)
class TrainRequest:
    """One training stage of a recipe: on ``snapshot_id`` (default the recipe's), new or resumed, named or not."""

    recipe: TrainConfig
    stage: Literal["sft", "grpo"] = "grpo"
    snapshot_id: str | None = None  # None: the recipe's snapshot
    resume: bool = False  # continue the newest run of this recipe, stage and snapshot (or run_name)
    run_name: str | None = None  # None: recipe-stage-snapshot-timestamp
    base_model: str | None = None  # overrides the recipe's base model (e.g. an SFT run's final/ folder)


def run(settings: Settings, request: TrainRequest, progress: ProgressCallback | None = None) -> TrainResult:
    """Train ``request.recipe`` on a snapshot; checkpoints land under ``settings.checkpoints_dir``.

    Raises :class:`TrainError` with a one-line reason on unusable input; see :func:`.trainer.train`.
    """
    from swerl_core.train.trainer import train

    return train(
        settings,
        request.recipe,
        stage=request.stage,
        snapshot_id=request.snapshot_id,
        resume=request.resume,
        run_name=request.run_name,
        base_model=request.base_model,
        progress=progress,
    )


def __getattr__(name: str) -> Any:
    # The result type lives beside the trainer; load it only when asked for.
    if name == "TrainResult":
        from swerl_core.train.trainer import TrainResult

        return TrainResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainError", "TrainRequest", "TrainResult", "run"]
