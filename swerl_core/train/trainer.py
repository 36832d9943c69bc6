"""The train stage's entry function: a recipe and a snapshot in, checkpoints and an MLflow run out.

:func:`train` resolves the snapshot, base model and run directory, builds the dataset for the stage (GRPO prompts or
SFT oracle answers), runs TRL (on DeepSpeed when the recipe names a config), saves ``final/`` and closes the MLflow
run (its params: the recipe and the effective settings; its dataset input: the snapshot's train split), returning a
:class:`~.result.TrainResult`. This is the trainer *in this process*: the launchers (:mod:`.followed`, :mod:`.k8s`)
run it in other processes through :func:`swerl_core.train.run`. With ``resume=True`` it continues the newest run of
the same recipe, stage and snapshot from its last complete checkpoint: same global step, same data order (TRL's
seeded sampler, with the consumed batches skipped).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from swerl_core.bucket import ensure_snapshot, publish_checkpoint
from swerl_core.config import Settings, StorageConfig, shown_settings
from swerl_core.config.storage import is_storage_uri
from swerl_core.interrupts import deferred
from swerl_core.lineage import git_sha, log_snapshot_input
from swerl_core.package_files import repository_file
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.prompts import oracle_answer
from swerl_core.runs import (
    FINAL_DIR,
    last_checkpoint,
    latest_run,
    new_run_name,
    read_run_id,
    remove_incomplete_checkpoints,
    run_prefix,
    write_run_id,
)
from swerl_core.search_replace import Edit
from swerl_core.snapshots import read_manifest, verify_snapshot
from swerl_core.train import TrainError
from swerl_core.train.config import Stage, TrainConfig, train_config_dict
from swerl_core.train.continuation import (
    hold_run,
    recipe_changes,
    recipe_record,
    remove_abandoned_weights,
    write_recipe_record,
    write_result_record,
)
from swerl_core.train.distributed import count_cpu_ranks, launched_rank, launched_world_size, prepare_deepspeed_env
from swerl_core.train.examples import Examples, grpo_examples, sft_examples
from swerl_core.train.result import TrainResult
from swerl_core.train.rollout_client import ROLLOUT_WEIGHTS_DIR, ServerRollouts
from swerl_core.train.snapshot import load_snapshot
from swerl_core.vllm_engine import VllmUnavailable, engine_on_gpu, prepare_vllm
from swerl_core.weight_sync import remove_weights

ORDER_LOG = "data_order.jsonl"


def train(
    settings: Settings,
    cfg: TrainConfig,
    *,
    stage: Stage = "grpo",
    snapshot_id: str | None = None,
    resume: bool = False,
    run_name: str | None = None,
    base_model: str | None = None,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Run one training stage of ``cfg`` on a snapshot; raises :class:`TrainError` on unusable input.

    Progress (the dataset, then one event per logged step) goes to ``swerl.train`` and ``progress``.
    """
    started = time.perf_counter()
    say = ProgressReporter("train", progress)
    snapshot_id = snapshot_id or cfg.snapshot
    if not snapshot_id:
        raise TrainError(f"no snapshot to train on: none requested and recipe {cfg.name!r} names none")
    if launched_world_size() != cfg.world_size:
        raise TrainError(
            f"recipe {cfg.name!r} is laid out for world_size={cfg.world_size} processes but this job has "
            f"{launched_world_size()}; launch it with that many processes or edit world_size"
        )
    cpu_ranks = launched_world_size() > 1 and not engine_on_gpu()
    if cpu_ranks and stage == "grpo" and cfg.grpo.use_vllm and cfg.grpo.vllm_mode == "colocate":
        raise TrainError(
            f"{launched_world_size()} processes on CPUs with grpo.vllm_mode: colocate (an engine in every rank) is "
            "not supported; generate through a rollout server (grpo.vllm_mode: server, weight sync directory)"
        )
    if cfg.deepspeed is not None:
        deepspeed = repository_file(cfg.deepspeed)  # infra/deepspeed/… from any directory
        if not deepspeed.is_file():
            raise TrainError(f"deepspeed config {cfg.deepspeed} not found (paths are relative to {Path.cwd()})")
        cfg = replace(cfg, deepspeed=deepspeed)
    ensure_snapshot(settings, snapshot_id)  # from shared storage when it is not here (storage.uri set)
    manifest = read_manifest(settings.snapshots_dir, snapshot_id)  # fail on a wrong id before loading anything heavy
    if manifest.get("train_rows") == 0:
        raise TrainError(
            f"snapshot {snapshot_id!r} has no training rows (every pull request it kept is held-out); "
            "curate one with a later held-out cut (curate.heldout_after)"
        )
    verify_snapshot(settings.snapshots_dir, snapshot_id)  # and on data altered since curate wrote it
    record = recipe_record(cfg, stage, snapshot_id, base_model, settings.home)
    model = resolve_model(settings.home, base_model or cfg.base_model, settings.storage)
    cfg = replace(cfg, base_model=model, snapshot=snapshot_id)
    run_name, run_dir, checkpoint = _run_dir(settings, cfg, stage, snapshot_id, resume, run_name)
    with ExitStack() as held:
        if launched_rank() == 0:  # one holder per run: a second trainer of it is refused
            held.callback(hold_run(settings.home, run_dir).release)
            if checkpoint is not None and (changes := recipe_changes(run_dir, record)):
                raise TrainError(
                    f"run {run_name} was trained with another recipe ({'; '.join(changes)}): resume it with its own "
                    "recipe, or start a new run"
                )
            if checkpoint is not None:
                remove_incomplete_checkpoints(run_dir)  # only now: a live trainer of this run may be saving one
        if cfg.deepspeed is not None:
            prepare_deepspeed_env(engine_on_gpu())
        if cpu_ranks:
            count_cpu_ranks()
        if stage == "grpo" and cfg.grpo.use_vllm and cfg.grpo.vllm_mode == "colocate":
            try:
                prepare_vllm(model, engine_on_gpu(), "grpo.vllm_mode: colocate")
            except VllmUnavailable as exc:
                raise TrainError(str(exc)) from None
        server_nccl = cfg.grpo.use_vllm and cfg.grpo.vllm_mode == "server" and cfg.grpo.vllm_weight_sync == "nccl"
        if stage == "grpo" and server_nccl and not engine_on_gpu():
            raise TrainError(
                "grpo.vllm_weight_sync: nccl needs CUDA on the trainer; on a CPU set grpo.vllm_weight_sync: directory"
            )
        rollouts = _server_rollouts(settings, cfg, run_dir) if stage == "grpo" else None
        if launched_rank() == 0 and rollouts is not None and rollouts.weight_sync == "directory":
            _check_weights_dir(rollouts)
            remove_abandoned_weights(
                settings.home, settings.checkpoints_dir, cfg.name, lambda other: _weights_dir(settings, cfg, other)
            )
        if launched_rank() == 0 and checkpoint is None:  # the checks above passed: a refused recipe leaves no run
            write_recipe_record(run_dir, record)

        tokenizer = load_tokenizer(model, settings.home)
        _check_answer_fits(tokenizer, cfg.max_completion_length)
        train_rows, _ = load_snapshot(settings.snapshots_dir, snapshot_id)
        examples = _examples(stage, train_rows, tokenizer, cfg)
        if len(examples.dataset) == 0:
            budget = f"max_prompt_length={cfg.max_prompt_length}"
            if stage == "sft":
                budget += f", answers shorter than max_completion_length={cfg.max_completion_length}"
            raise TrainError(
                f"no row of snapshot {snapshot_id!r} fits the token budget ({budget}): "
                f"{examples.dropped_too_long} rows too long, "
                f"{examples.dropped_unanswerable} without an exact oracle answer"
            )
        say(
            f"train {stage} {run_name}: {len(examples.dataset)} examples from {snapshot_id} "
            f"({examples.dropped_too_long} too long, {examples.dropped_unanswerable} without an exact oracle answer), "
            f"model {model}" + (f", resuming from {checkpoint.name}" if checkpoint else "")
        )
        return _run(settings, cfg, stage, run_name, run_dir, checkpoint, tokenizer, examples, rollouts, started, say)


def resolve_model(home: Path, name: str, storage: StorageConfig | None = None) -> str:
    """A local model directory (absolute, under ``home``, or under the cwd) if one exists, else ``name`` as a hub id.

    An ``s3://`` checkpoint on shared storage is fetched (verified) into ``home/models`` first.
    """
    if is_storage_uri(name):
        from swerl_core.models import resolve_model as resolve_reference

        return str(resolve_reference(None, name, Path(home) / "models", storage).local_dir)
    for candidate in (Path(name).expanduser(), Path(home) / name):
        if (candidate / "config.json").is_file():
            return str(candidate.resolve())
    if _folder_only(name):  # fail now, not after a minute of hub retries for a name no hub holds
        raise TrainError(
            f"base model {name!r} not found under {home} or the working directory: build it with "
            "`swerl init-model` (`swerl init-model --learnable` for the learnable-cpu recipe)"
        )
    return name


# The folders swerl writes under SWERL_HOME; a model named inside one is a folder, never a hub id.
_HOME_FOLDERS = ("models", "checkpoints")


def _folder_only(name: str) -> bool:
    """Whether ``name`` can only name a folder: a hub id is ``NAME`` or ``ORG/NAME``, never a path that starts with
    ``/``, ``.`` or ``~``, has more parts, or starts with a folder of SWERL_HOME (``models/tiny``)."""
    parts = Path(name).parts
    return name.startswith(("/", ".", "~")) or len(parts) > 2 or (len(parts) == 2 and parts[0] in _HOME_FOLDERS)


def load_tokenizer(model: str, home: Path) -> Any:
    """The model's tokenizer (local files or the HF cache; never a download when HF_HUB_OFFLINE=1)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise TrainError(
            f"cannot load base model {model!r}: no model directory there, under {home} or in the cwd, and as a "
            f"hub id: {str(exc).splitlines()[0]}"
        ) from None
    if tokenizer.chat_template is None:
        raise TrainError(f"base model {model!r} has no chat template; SWE-RL prompts are chat messages")
    return tokenizer


def _check_answer_fits(tokenizer: Any, max_completion_length: int) -> None:
    shortest = oracle_answer("x", [Edit("a.py", "a", "b")])
    needed = len(tokenizer(shortest, add_special_tokens=False)["input_ids"]) + 1  # + end of turn
    if needed > max_completion_length:
        raise TrainError(
            f"max_completion_length={max_completion_length} cannot hold the shortest answer ({needed} tokens)"
        )


def _run_dir(
    settings: Settings, cfg: TrainConfig, stage: Stage, snapshot_id: str, resume: bool, run_name: str | None
) -> tuple[str, Path, Path | None]:
    main_process = launched_rank() == 0
    if resume:
        run_name = run_name or latest_run(settings.checkpoints_dir, run_prefix(cfg.name, stage, snapshot_id))
        run_dir = settings.checkpoints_dir / run_name
        checkpoint = last_checkpoint(run_dir)  # complete ones only; the caller removes the others once it holds the run
        if checkpoint is None:
            raise TrainError(f"run {run_name} has no complete checkpoint to resume from")
        if (run_dir / FINAL_DIR).exists():
            raise TrainError(f"run {run_name} already finished ({run_dir / FINAL_DIR})")
        return run_name, run_dir, checkpoint
    if run_name is None and launched_world_size() > 1:
        # Each process would stamp its own time: the ranks must be told one shared name.
        raise TrainError("a multi-process run needs an explicit run name so that every process writes the same run")
    run_name = run_name or new_run_name(cfg.name, stage, snapshot_id)
    run_dir = settings.checkpoints_dir / run_name
    if main_process and run_dir.exists() and any(run_dir.iterdir()):
        raise TrainError(f"run {run_name} already exists in {run_dir}; resume it or choose another run name")
    return run_name, run_dir, None


def _examples(stage: Stage, rows: Any, tokenizer: Any, cfg: TrainConfig) -> Examples:
    if stage == "sft":
        return sft_examples(rows, tokenizer, cfg.max_prompt_length, cfg.max_completion_length)
    return grpo_examples(rows, tokenizer, cfg.max_prompt_length)


def _run(
    settings: Settings,
    cfg: TrainConfig,
    stage: Stage,
    run_name: str,
    run_dir: Path,
    checkpoint: Path | None,
    tokenizer: Any,
    examples: Examples,
    rollouts: ServerRollouts | None,
    started: float,
    say: ProgressReporter,
) -> TrainResult:
    from swerl_core.train import stages, tracking, trl_args
    from swerl_core.train.reward_fn import SweRLReward

    args = trl_args.sft_args(cfg, run_dir) if stage == "sft" else trl_args.grpo_args(cfg, run_dir)
    rank = launched_rank()  # TrainingArguments.process_index is 0 until the devices are set up
    main_process = rank == 0
    recipe = train_config_dict(cfg)
    run_id = None
    callbacks: list[Any] = []
    if main_process:
        params = {
            **tracking.flat_params(recipe),
            **tracking.flat_params(shown_settings(settings), "settings."),
            "stage": stage,
            "snapshot_id": cfg.snapshot or "",
            "git_sha": git_sha(),
            "run_name": run_name,
            "train_examples": str(len(examples.dataset)),
            "dropped_too_long": str(examples.dropped_too_long),
            "dropped_unanswerable": str(examples.dropped_unanswerable),
            "gradient_accumulation_steps": str(args.gradient_accumulation_steps),
        }
        previous = read_run_id(run_dir) if checkpoint is not None else None
    reward = SweRLReward(
        workers=settings.reward.workers,
        samples_to_keep=cfg.samples_to_log,
        order_log=run_dir / (ORDER_LOG if main_process else f"data_order.rank{rank}.jsonl"),
    )
    status = "FAILED"
    try:
        if main_process:
            with deferred():  # a run created is a run whose id is kept: the finally below always closes it
                run_id = tracking.start_run(
                    settings.tracking_uri, settings.home / "mlartifacts", run_name, previous, params
                )
                write_run_id(run_dir, run_id)
                callbacks.append(tracking.MlflowMetrics(settings.tracking_uri, run_id, say))
        if stage == "sft":
            trainer = stages.build_sft_trainer(cfg.base_model, tokenizer, args, examples.dataset, callbacks)
        else:
            trainer = stages.build_grpo_trainer(
                cfg.base_model, tokenizer, args, examples.dataset, reward, callbacks, rollouts
            )
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        trainer.save_model(str(run_dir / FINAL_DIR))
        status = "FINISHED"
    except Exception:
        raise
    except BaseException:  # Ctrl-C, SIGTERM/SIGHUP (swerl_core.interrupts), a scheduler's own termination signal
        status = "KILLED"
        raise
    finally:
        if rollouts is not None and main_process:
            # The last synced version is only the servers' copy of the policy, finished or not: a resumed run syncs
            # again from its checkpoint. Only a run killed outright leaves one (swerl_core.train.continuation).
            remove_weights(rollouts.weights_dir)
        if run_id is not None:
            with deferred():  # a stop signal now would leave the run RUNNING forever: it waits until the run is closed
                history = callbacks[0].history
                tracking.finish_run(settings.tracking_uri, run_id, history, reward.samples, recipe, status)
    checkpoint_uri = None
    if main_process:
        checkpoint_uri = publish_checkpoint(settings, run_dir / FINAL_DIR, run_name, run_id)
        if checkpoint_uri is not None and run_id is not None:
            tracking.record_checkpoint_uri(settings.tracking_uri, run_id, checkpoint_uri)
    if run_id is not None:
        log_snapshot_input(settings.tracking_uri, run_id, settings.snapshots_dir, cfg.snapshot or "", "train")
    last: dict[str, float] = {}
    for record in callbacks[0].history if callbacks else []:
        last.update(record)  # the latest value of every metric, plus the end-of-training summary
    last.pop("step", None)
    result = TrainResult(
        run_name=run_name,
        mlflow_run_id=run_id,
        stage=stage,
        snapshot_id=cfg.snapshot or "",
        base_model=cfg.base_model,
        checkpoint_dir=run_dir,
        model_dir=run_dir / FINAL_DIR,
        steps=int(trainer.state.global_step),
        train_examples=len(examples.dataset),
        dropped_too_long=examples.dropped_too_long,
        seconds=time.perf_counter() - started,
        metrics=last,
        checkpoint_uri=checkpoint_uri,
        resumed_from_steps=(int(checkpoint.name.split("-")[-1]),) if checkpoint else (),
    )
    if main_process:
        write_result_record(run_dir, result)
    return result


def _server_rollouts(settings: Settings, cfg: TrainConfig, run_dir: Path) -> ServerRollouts | None:
    g = cfg.grpo
    if not (g.use_vllm and g.vllm_mode == "server" and g.vllm_server_url):
        return None
    return ServerRollouts(
        url=g.vllm_server_url.rstrip("/"),
        weight_sync=g.vllm_weight_sync,
        weights_dir=_weights_dir(settings, cfg, run_dir),
        request_timeout_s=g.vllm_request_timeout_s,
        connect_timeout_s=g.vllm_server_timeout_s,
    )


def _weights_dir(settings: Settings, cfg: TrainConfig, run_dir: Path) -> Path:
    """Where a directory sync writes ``run_dir``'s weights versions: its own folder, or inside
    ``grpo.vllm_weights_dir`` (relative: under SWERL_HOME) under the run's name."""
    if cfg.grpo.vllm_weights_dir is None:
        return run_dir / ROLLOUT_WEIGHTS_DIR
    weights_dir = Path(cfg.grpo.vllm_weights_dir) / run_dir.name
    return weights_dir if weights_dir.is_absolute() else settings.home / weights_dir


def _check_weights_dir(rollouts: ServerRollouts | None) -> None:
    """Refuse a directory sync whose weights folder cannot be written, before the model is loaded (the first sync
    would fail with an ``OSError`` after it); what the check creates is removed again."""
    if rollouts is None or rollouts.weight_sync != "directory":
        return
    folder = rollouts.weights_dir
    created: list[Path] = []
    try:
        for parent in [*reversed(folder.parents), folder]:
            if not parent.is_dir():
                parent.mkdir()
                created.append(parent)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise TrainError(
            f"grpo.vllm_weights_dir: cannot write weights versions to {folder} ({exc.strerror or exc})"
        ) from None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()
