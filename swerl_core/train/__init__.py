"""Training: GRPO and SFT recipes over TRL on the SWE-RL reward, run where ``train.launcher`` says.

The package owns the recipe config (:mod:`.config`), the mapping onto TRL's ``GRPOConfig`` /
``SFTConfig`` (:mod:`.trl_args`), the dataset from a snapshot (:mod:`.snapshot`), the reward adapter
(:mod:`.reward_fn`), MLflow tracking (:mod:`.tracking`), DeepSpeed's process setup (:mod:`.distributed`) and
the one record of a run (:mod:`.result`). The entry is :func:`run` (a :class:`TrainRequest` in, a
:class:`~.result.TrainResult` out), and ``settings.train.launcher`` decides where the stage runs:

- ``in_process``: the trainer itself (:func:`.trainer.train`) in the calling process. ``swerl train``, the
  child process below and the Kubernetes pods are trainers; ``torchrun``/``accelerate``/``deepspeed`` start
  one per rank (:func:`in_this_process`).
- ``local`` (the default): a child process followed line by line and resumed from its last checkpoint when it
  dies (:mod:`.followed`).
- ``kubernetes``: an indexed Job of ``torchrun`` pods, followed through the API server (:mod:`.k8s`).

Progress arrives as :class:`~swerl_core.progress.Progress` events (step metrics as numbers) whichever ran it.
The run directory layout and lineage it writes are shared modules (:mod:`swerl_core.runs`,
:mod:`swerl_core.lineage`), read by evaluation and the registry. It never schedules anything (flows do) and
never downloads weights or data itself; the offline tiny models are the demo's (:mod:`swerl_core.demo.tiny_model`).

Importing this package is cheap: torch, transformers, TRL and MLflow load only inside the
modules that need them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from swerl_core.progress import ProgressCallback
from swerl_core.train.errors import TrainError

if TYPE_CHECKING:
    from swerl_core.config import Settings
    from swerl_core.train.config import TrainConfig
    from swerl_core.train.plan import TrainPlan
    from swerl_core.train.result import TrainResult


@dataclass(frozen=True)
class TrainRequest:
    """One training stage of a recipe: on ``snapshot_id`` (default the recipe's), new or resumed, named or not."""

    recipe: TrainConfig  # the effective recipe, read once by the caller; launchers hand it on as it is
    stage: Literal["sft", "grpo"] = "grpo"
    snapshot_id: str | None = None  # None: the recipe's snapshot
    resume: bool = False  # continue the newest run of this recipe, stage and snapshot (or run_name)
    run_name: str | None = None  # None: recipe-stage-snapshot-timestamp
    base_model: str | None = None  # overrides the recipe's base model (e.g. an SFT run's final/ folder)
    # Continue this recipe's newest run on the snapshot when it was trained with the same recipe and base model:
    # resumed from its last checkpoint when unfinished, returned as it is when finished (TrainResult.reused);
    # otherwise a new run, with one line saying why (swerl_core.train.continuation).
    reuse: bool = False


def run(settings: Settings, request: TrainRequest, progress: ProgressCallback | None = None) -> TrainResult:
    """Train ``request.recipe`` on a snapshot where ``settings.train.launcher`` says; checkpoints land under
    ``settings.checkpoints_dir`` (as the caller sees it) either way.

    Raises :class:`TrainError` with a one-line reason on unusable input, a recipe whose plan does not fit
    (:mod:`.plan`, checked here before a launcher starts any process or pod; in this process, the caller's to
    check: ``swerl train`` does) or a failed run (and the Kubernetes launcher's
    ``K8sError`` when the cluster cannot be reached); see :func:`.trainer.train`. With ``request.reuse`` a finished
    run of the same recipe is returned without training and an unfinished one resumed (:mod:`.continuation`).
    """
    from swerl_core.train.continuation import continued, write_result_record

    resolved = continued(settings, request, _launched_recipe(settings, request))
    if not isinstance(resolved, TrainRequest):
        return resolved
    request = resolved
    launcher = settings.train.launcher
    if launcher != "in_process":
        checked_plan(settings, request)
        if launcher == "kubernetes":
            from swerl_core.train.k8s.training import train_on_cluster

            result = train_on_cluster(settings, request, progress)
        else:
            from swerl_core.train.followed import train_followed

            result = train_followed(settings, request, progress)
        # The trainer recorded its own attempt; the launcher's record adds the restarts and every resumed step.
        if result.checkpoint_dir.is_dir():  # a cluster's home volume not mounted here keeps the pods' record
            write_result_record(result.checkpoint_dir, result)
        return result
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


def _launched_recipe(settings: Settings, request: TrainRequest) -> TrainConfig | None:
    """The recipe as a Kubernetes Job's pods run and record it (``world_size`` the cluster's), to find the run they
    left; ``None`` elsewhere, or when it cannot run there (the launcher says why)."""
    if not request.reuse or settings.train.launcher != "kubernetes":
        return None
    from swerl_core.errors import ConfigError
    from swerl_core.train.k8s.training import recipe_on_cluster

    try:
        return recipe_on_cluster(settings, request.recipe)
    except ConfigError:
        return None


def make_plan(settings: Settings, request: TrainRequest, gpu_memory_gib: float | None = None) -> TrainPlan:
    """What ``request`` needs per GPU (:mod:`.plan`), its model built on the meta device; raises
    :class:`TrainError` when the model's architecture cannot be read without a download."""
    from swerl_core.train.plan import plan_training

    return plan_training(
        request.recipe,
        request.stage,
        settings.home,
        base_model=request.base_model,
        gpu_memory_gib=gpu_memory_gib,
    )


def checked_plan(
    settings: Settings, request: TrainRequest, shown: Callable[[TrainPlan], None] | None = None
) -> TrainPlan | None:
    """:func:`make_plan`, handed to ``shown`` (e.g. to publish it), then refused with its one line when it does not
    fit; ``None`` when the base model's architecture is not here to plan with (an ``s3://`` checkpoint, a hub id not
    cached: the trainer fetches it, or says why it cannot). Logged under ``swerl.train``; a training run's progress
    stays its steps."""
    log = logging.getLogger("swerl.train")
    try:
        made = make_plan(settings, request)
    except TrainError as exc:
        log.info("plan skipped: %s", exc)
        return None
    if shown is not None:
        shown(made)
    if made.problems:
        raise TrainError(made.refusal())
    log.info("plan: %s parameters, %.2f GiB per training GPU, fits", f"{made.parameters:,}", made.per_gpu / 2**30)
    return made


def in_this_process(settings: Settings) -> Settings:
    """``settings`` with ``train.launcher: in_process``: for the programs that are the trainer themselves."""
    return replace(settings, train=replace(settings.train, launcher="in_process"))


def __getattr__(name: str) -> Any:
    # The result type lives beside its JSON form; load it only when asked for.
    if name == "TrainResult":
        from swerl_core.train.result import TrainResult

        return TrainResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainError", "TrainRequest", "TrainResult", "checked_plan", "in_this_process", "make_plan", "run"]
