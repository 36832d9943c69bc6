"""The ``swerl train`` and ``swerl init-model`` verbs: flags in, one library call, a short summary out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, the result to stdout. torch, transformers and
TRL load only when a verb runs. ``--config`` is the settings file as everywhere; the training recipe is
``--recipe``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from swerl_core.cli.arguments import add_verb, model_argument
from swerl_core.config import Settings
from swerl_core.errors import SwerlError
from swerl_core.models import resolve_model_reference
from swerl_core.package_files import recipe_names
from swerl_core.snapshots import default_snapshot

DEFAULT_TINY_MODEL = Path("models/tiny")  # under SWERL_HOME; the demo recipe's base_model


def register_train(verbs: Any) -> None:
    """Add ``swerl train`` to the CLI."""
    parser = add_verb(
        verbs,
        "train",
        run_train,
        help="train a model on a snapshot (SFT warm start or GRPO on the SWE-RL reward)",
        description=(
            "Train with a recipe: --stage sft teaches the answer format on oracle answers, --stage grpo runs "
            "GRPO with the SWE-RL reward. Checkpoints land in $SWERL_HOME/checkpoints/<run>/ (it prints the "
            "run's final model), metrics in MLflow.\n\n"
            "--model latest names the final checkpoint of the newest finished run (of any recipe and stage), "
            "so an SFT run can be followed by `swerl train --recipe R --model latest` (GRPO from it), and "
            "`evaluate` and `register` take --model latest the same way."
        ),
        needs_home=True,
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        required=True,
        metavar="RECIPE",
        help=f"a shipped recipe's name ({', '.join(recipe_names())}) or a recipe file",
    )
    parser.add_argument(
        "--snapshot",
        metavar="ID",
        help="snapshot id (default: the recipe's snapshot when it exists, else the newest one curated)",
    )
    parser.add_argument("--stage", choices=("sft", "grpo"), default="grpo", help="training stage")
    parser.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop after N optimizer steps (default: the recipe's: grpo.max_steps, or sft.epochs)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the newest run of this recipe, stage and snapshot from its last checkpoint",
    )
    parser.add_argument(
        "--run-name",
        metavar="NAME",
        help="name of the training run (default: recipe-stage-snapshot-timestamp; required under a launcher)",
    )
    parser.add_argument(
        "--model",
        metavar="DIR|latest|models:/NAME@ALIAS|s3://…/final|HUB_ID",
        help="base model overriding the recipe's; a directory relative to the cwd or $SWERL_HOME, `latest` (the "
        "newest finished run's final checkpoint), a registry URI, a checkpoint on shared storage or a hub id",
    )
    parser.add_argument("--deepspeed", type=Path, metavar="JSON", help="DeepSpeed config overriding the recipe's")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: print what one GPU must hold (the model built on the meta device from its config: "
        "parameters, weights, gradients, optimizer states, activations, vLLM) and whether the recipe fits; "
        "exit 1 when it does not (every training run checks this first)",
    )
    parser.add_argument(
        "--gpu-memory-gib",
        type=float,
        metavar="GIB",
        help="with --plan: judge against GPUs of this much memory instead of the recipe's gpu_memory_gib",
    )
    # The `deepspeed` launcher appends --local_rank=N to every process's arguments; the rank itself
    # is read from the LOCAL_RANK variable it also sets.
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)


def register_init_model(verbs: Any) -> None:
    """Add ``swerl init-model`` to the CLI."""
    parser = add_verb(
        verbs,
        "init-model",
        run_init_model,
        help="write a tiny random-init Llama + tokenizer for offline CPU runs",
        description=(
            "Build a few-million-parameter LlamaForCausalLM and a byte-level BPE tokenizer, no download; with "
            "--learnable, the learnable world's 0.6M-parameter model given the induction warm-up. "
            "A relative OUT_DIR is under $SWERL_HOME, where recipes look for their base_model."
        ),
    )
    parser.add_argument(
        "--tiny",
        type=Path,
        default=None,
        metavar="OUT_DIR",
        help=f"where to save the model (relative: under $SWERL_HOME; default {DEFAULT_TINY_MODEL}, "
        "with --learnable models/tiny-learnable-induction)",
    )
    parser.add_argument(
        "--learnable",
        action="store_true",
        help="the learnable world's model (learnable-cpu recipe): its tokenizer and shape, then the induction "
        "warm-up that teaches it to copy from its prompt (about 3 minutes on 2 cores)",
    )
    parser.add_argument("--force", action="store_true", help="replace a model already in OUT_DIR")


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    """Run :func:`swerl_core.train.run` for the given flags and print the result."""
    from swerl_core.cli.progress import ProgressLines
    from swerl_core.train import TrainRequest, checked_plan, in_this_process, run
    from swerl_core.train.config import load_train_config
    from swerl_core.train.distributed import echoes_another_rank, launched_rank
    from swerl_core.vllm_engine import leave_vllm_unimported

    settings = in_this_process(settings)  # `swerl train` is the trainer: what torchrun & co. start on every rank

    cfg = load_train_config(args.recipe)
    if args.deepspeed is not None:
        cfg = replace(cfg, deepspeed=args.deepspeed)
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise SwerlError(f"--max-steps must be a positive number of steps, got {args.max_steps}")
        if args.stage == "sft":
            cfg = replace(cfg, sft=replace(cfg.sft, max_steps=args.max_steps))
        else:
            cfg = replace(cfg, grpo=replace(cfg.grpo, max_steps=args.max_steps))
    model = None
    if args.model is not None:
        model = resolve_model_reference(model_argument(args.model, settings), settings.home, hub_id_allowed=True)
    if args.plan:
        return _print_plan(settings, TrainRequest(cfg, args.stage, base_model=model), args.gpu_memory_gib)
    if args.gpu_memory_gib is not None:
        raise SwerlError("--gpu-memory-gib goes with --plan (a training run checks the recipe's gpu_memory_gib)")
    snapshot = args.snapshot or default_snapshot(settings, cfg.snapshot)
    if not snapshot:
        raise SwerlError(f"no snapshot: pass --snapshot ID or set `snapshot` in {args.recipe}")
    if snapshot not in (args.snapshot, cfg.snapshot):
        print(f"snapshot: {snapshot} (the newest curated; pass --snapshot to choose)", file=sys.stderr)
    request = TrainRequest(cfg, args.stage, snapshot, args.resume, args.run_name, model)
    if args.stage == "sft" or not cfg.grpo.use_vllm:
        leave_vllm_unimported()  # this process trains this recipe only: no vLLM, so none of its import time
    lines = ProgressLines()
    try:
        if launched_rank() == 0:  # under torchrun & co. one rank plans; all would say the same
            checked_plan(settings, request)
        result = run(settings, request, lines)
    except RuntimeError as exc:
        # The main rank stopped first and says why in its one line: this rank's broken collective is not news.
        if echoes_another_rank(exc):
            return 1
        raise
    finally:
        lines.close()
    if launched_rank() != 0:
        return 0  # the result is the main rank's to report: the others have no MLflow run and would repeat it
    reward = result.metrics.get("reward")
    shown = f", last mean reward {reward:+.3f}" if reward is not None else ""
    print(f"{result.run_name}: {result.steps} steps in {result.seconds:.0f} s{shown}")
    print(f"model: {result.model_dir}" + (f" (published: {result.checkpoint_uri})" if result.checkpoint_uri else ""))
    print(f"mlflow run: {result.mlflow_run_id} ({settings.tracking_uri})")
    return 0


def _print_plan(settings: Settings, request: Any, gpu_memory_gib: float | None) -> int:
    from swerl_core.train import make_plan
    from swerl_core.train.config import MAX_GPU_MEMORY_GIB

    if gpu_memory_gib is not None and not 0 < gpu_memory_gib <= MAX_GPU_MEMORY_GIB:  # also refuses nan and inf
        raise SwerlError(f"--gpu-memory-gib must be a number of GiB in (0, 10⁶], got {gpu_memory_gib}")
    made = make_plan(settings, request, gpu_memory_gib)
    print(made.render())
    if made.problems:
        raise SwerlError(made.refusal())
    return 0


def run_init_model(args: argparse.Namespace, settings: Settings) -> int:
    """Write the tiny model (refusing to replace one unless ``--force``) and print where it went and its size;
    with ``--learnable`` the learnable world's model, warmed up (and reused when already there)."""
    from swerl_core.demo.learnable import BASE_MODEL
    from swerl_core.demo.tiny_model import init_tiny_model, parameter_count

    out = (args.tiny or (BASE_MODEL if args.learnable else DEFAULT_TINY_MODEL)).expanduser()
    out = out if out.is_absolute() else settings.home / out
    if out.exists() and not out.is_dir():
        raise SwerlError(f"{out} is a file, not a folder for the model")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise SwerlError(f"{out} already holds files; pass --force to replace them")
    out.mkdir(parents=True, exist_ok=True)  # an unwritable place fails here, before minutes of building
    if args.learnable:
        from swerl_core.cli.progress import ProgressLines
        from swerl_core.demo.induction import copying
        from swerl_core.demo.learnable import learnable_base_model

        lines = ProgressLines()
        try:
            warmed = learnable_base_model(out, lines)
        finally:
            lines.close()
        print(f"copy accuracy after the induction warm-up: {copying(warmed.copy_accuracy)}")
        if warmed.reused:
            print(f"tiny model ({parameter_count(out) / 1e6:.1f}M parameters) already in {out}: reused")
            return 0
    else:
        out = init_tiny_model(out)
    print(f"tiny model ({parameter_count(out) / 1e6:.1f}M parameters) written to {out}")
    return 0
