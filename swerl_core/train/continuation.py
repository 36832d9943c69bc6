"""Which run a training request continues (``TrainRequest.reuse``), and the two records that decide it.

A run directory records the recipe it trains when it starts (:data:`RECIPE_RECORD`: the effective recipe, the
stage, the snapshot and the base model as asked for) and its result when it finishes (:data:`RESULT_RECORD`, the
:class:`~.result.TrainResult`). With ``reuse``, :func:`continued` looks at the newest run of the same recipe, stage
and snapshot that got anywhere (a complete checkpoint or ``final/``): trained with the same recipe and base model,
an unfinished one is resumed from its last checkpoint and a finished one is returned as it is, never trained
further; trained with another, it is left alone and a new run starts, with one line saying what differs. So a flow
run after a crash continues the run the crash stopped, and a GRPO stage after it starts from the same SFT model.

Keys that say where and how rollouts are served, or what is logged, may change between the attempts of one run
(a new rollout server has a new URL); every other key is the run's.

While a process trains a run it holds the run's lock (:func:`run_lock`): a second trainer of the same run is
refused, and a run nobody holds is one that can be left or cleaned up. The last weights version a directory sync
wrote is the servers' copy of the policy, model-sized and never needed to resume; a trainer removes it however it
ends, and one killed outright leaves it, which :func:`remove_abandoned_weights` removes when the next run of the
recipe starts. This module never trains anything.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.errors import LockTimeout
from swerl_core.json_files import write_json
from swerl_core.locks import LockFolder, ProcessLock, holder_pid, lock_active
from swerl_core.runs import FINAL_DIR, last_checkpoint, run_prefix
from swerl_core.train.config import Stage, TrainConfig, dotted, train_config_dict
from swerl_core.train.errors import TrainError
from swerl_core.train.result import TrainResult
from swerl_core.weight_sync import remove_weights

if TYPE_CHECKING:
    from swerl_core.config import Settings
    from swerl_core.train import TrainRequest

log = logging.getLogger("swerl.train")

RECIPE_RECORD = "recipe.json"
RESULT_RECORD = "result.json"

# Keys an attempt may change without changing the run: rollout serving, the plan's memory, what is logged.
OPERATIONAL_KEYS = frozenset(
    {
        "gpu_memory_gib",
        "samples_to_log",
        "gradient_checkpointing",
        "grpo.vllm_server_url",
        "grpo.vllm_server_timeout_s",
        "grpo.vllm_request_timeout_s",
        "grpo.vllm_weight_sync",
        "grpo.vllm_weights_dir",
        "grpo.vllm_gpu_memory_utilization",
    }
)
_OTHER_STAGE = {"sft": "grpo.", "grpo": "sft."}


def recipe_record(
    cfg: TrainConfig, stage: Stage, snapshot_id: str, base_model: str | None, home: Path
) -> dict[str, Any]:
    """What makes a run this run: the recipe, stage, snapshot and base model as asked for (a model folder under
    ``home`` relative to it, so a pod's ``/data`` and the caller's home give the same record)."""
    record = train_config_dict(cfg)
    record.update(stage=stage, snapshot=snapshot_id, base_model=_under_home(base_model or cfg.base_model, home))
    return record


def write_recipe_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Record the recipe of a new run (written once: a resumed run keeps its first record)."""
    path = run_dir / RECIPE_RECORD
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, record, indent=1, sort_keys=True)


def recipe_changes(run_dir: Path, record: dict[str, Any]) -> list[str] | None:
    """How ``record`` differs from the recipe ``run_dir`` recorded (``key was → now``, training keys only); ``None``
    when the run recorded none (trained before swerl recorded recipes)."""
    try:
        recorded = json.loads((run_dir / RECIPE_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    # The rollout servers' layout and the other stage's section do not change what this stage trains.
    ignored = ("rollout.", _OTHER_STAGE.get(str(record.get("stage")), "sft."))
    was, now = dotted(recorded), dotted(record)
    keys = sorted(k for k in was.keys() | now.keys() if k not in OPERATIONAL_KEYS and not k.startswith(ignored))
    return [f"{k} {was.get(k)!r} → {now.get(k)!r}" for k in keys if was.get(k) != now.get(k)]


def write_result_record(run_dir: Path, result: TrainResult) -> None:
    """Record a finished run's result, for a later request to reuse."""
    write_json(run_dir / RESULT_RECORD, json.loads(result.as_json()), indent=1, sort_keys=True)


def read_result_record(run_dir: Path) -> TrainResult | None:
    """The result a finished run recorded, its paths where ``run_dir`` is now; ``None`` when there is none."""
    try:
        result = TrainResult.from_json((run_dir / RESULT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return replace(result, checkpoint_dir=run_dir, model_dir=run_dir / FINAL_DIR)


def continued(
    settings: Settings, request: TrainRequest, launched: TrainConfig | None = None
) -> TrainRequest | TrainResult:
    """``request`` resolved by the reuse rule (module docstring): the finished run's result, a request that resumes
    an unfinished run, or ``request`` itself (a new run). ``launched`` is the recipe as the launcher runs it, when it
    changes it (a cluster sets ``world_size``). Raises :class:`TrainError` when ``request.run_name`` names a run
    trained with another recipe (a new run cannot take its name)."""
    cfg = request.recipe
    snapshot_id = request.snapshot_id or cfg.snapshot
    if not request.reuse or request.resume or not snapshot_id:
        return request
    record = recipe_record(launched or cfg, request.stage, snapshot_id, request.base_model, settings.home)
    if request.run_name is not None:
        names = [request.run_name]
    else:
        prefix = run_prefix(cfg.name, request.stage, snapshot_id)
        names = sorted((p.name for p in settings.checkpoints_dir.glob(f"{prefix}-*") if p.is_dir()), reverse=True)
    for name in names:
        run_dir = settings.checkpoints_dir / name
        finished = (run_dir / FINAL_DIR / "config.json").is_file()
        checkpoint = last_checkpoint(run_dir)
        if not finished and checkpoint is None:
            continue  # stopped before its first checkpoint: nothing to continue from
        changes = recipe_changes(run_dir, record)
        why = "it recorded no recipe to compare" if changes is None else f"its recipe differs: {'; '.join(changes)}"
        if changes != []:
            if request.run_name is not None:
                raise TrainError(f"run {name} is not continued: {why}")
            log.warning("run %s is not continued (%s); starting a new run", name, why)
            return request
        if finished:
            result = read_result_record(run_dir)
            if result is None:
                log.warning("run %s finished but recorded no result; starting a new run", name)
                return request
            log.info("run %s already finished this recipe at step %d: reused, not trained again", name, result.steps)
            return replace(result, reused=True)
        assert checkpoint is not None
        log.info("resuming unfinished run %s from %s", name, checkpoint.name)
        return replace(request, resume=True, run_name=name)
    return request


def run_lock(home: Path, run_dir: Path) -> ProcessLock:
    """The lock a process training ``run_dir`` holds (in ``home``'s locks folder; dropped when it dies)."""
    return LockFolder.of_home(home).for_path("training", run_dir)


def hold_run(home: Path, run_dir: Path) -> ProcessLock:
    """Take ``run_dir``'s lock now, or raise :class:`TrainError` naming the process that trains it."""
    lock = run_lock(home, run_dir)
    try:
        lock.acquire(0)
    except LockTimeout:
        raise TrainError(
            f"run {run_dir.name} is being trained by another process (PID {holder_pid(lock.path) or 'unknown'})"
        ) from None
    return lock


def remove_abandoned_weights(
    home: Path, checkpoints_dir: Path, recipe: str, weights_dir: Callable[[Path], Path]
) -> list[Path]:
    """Remove the weights versions that GRPO runs of ``recipe`` killed outright left (``weights_dir`` maps a run
    folder to its weights folder), skipping runs a live process holds; returns the folders cleaned."""
    cleaned = []
    for run_dir in sorted(checkpoints_dir.glob(f"{run_prefix(recipe, 'grpo', '')}*")):
        folder = weights_dir(run_dir)
        if folder.is_dir() and not lock_active(run_lock(home, run_dir).path):
            remove_weights(folder)
            log.info("removed the weights versions run %s left when it was killed (%s)", run_dir.name, folder)
            cleaned.append(folder)
    return cleaned


def _under_home(model: str, home: Path) -> str:
    path = Path(model).expanduser()
    if not path.is_absolute():
        return model
    try:
        return path.resolve().relative_to(Path(home).resolve()).as_posix()
    except ValueError:
        return model
