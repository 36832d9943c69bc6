"""The ``swerl train`` and ``swerl init-model`` verbs: flags in, one library call, a short summary out.

Registered into :mod:`swerl_core.cli`. Progress (one line per step) goes to stderr, the result to
stdout. torch, transformers and TRL load only when a verb runs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from swerl_core.config import Settings


def register_train(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl train`` to the CLI."""
    parser = verbs.add_parser(
        "train",
        help="train a model on a snapshot (SFT warm start or GRPO on the SWE-RL reward)",
        description=(
            "Train with a recipe from deployments/configs/: --stage sft teaches the answer format on "
            "oracle answers, --stage grpo (default) runs GRPO with the SWE-RL reward. Checkpoints land in "
            "$SWERL_HOME/checkpoints/<run>/, metrics in MLflow."
        ),
    )
    # dest differs from the global --config (settings file): both may be given, before and after the verb.
    parser.add_argument(
        "--config",
        dest="recipe",
        type=Path,
        required=True,
        metavar="RECIPE.yaml",
        help="training recipe, e.g. deployments/configs/demo-cpu.yaml",
    )
    parser.add_argument("--snapshot", metavar="ID", help="snapshot id (default: the recipe's snapshot)")
    parser.add_argument("--stage", choices=("sft", "grpo"), default="grpo", help="training stage (default grpo)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the newest run of this recipe, stage and snapshot from its last checkpoint",
    )
    parser.add_argument(
        "--run-name",
        dest="run",
        metavar="NAME",
        help="run name (default: recipe-stage-snapshot-timestamp; required under a launcher)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH_OR_ID",
        help="base model overriding the recipe's (e.g. the final/ folder of an SFT run)",
    )
    parser.add_argument("--deepspeed", type=Path, metavar="JSON", help="DeepSpeed config overriding the recipe's")
    # The `deepspeed` launcher appends --local_rank=N to every process's arguments; the rank itself
    # is read from the LOCAL_RANK variable it also sets.
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(command=run_train)


def register_init_model(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl init-model`` to the CLI."""
    parser = verbs.add_parser(
        "init-model",
        help="write a tiny random-init Llama + tokenizer for offline CPU runs",
        description="Build a few-million-parameter LlamaForCausalLM and a byte-level BPE tokenizer, no download.",
    )
    parser.add_argument("--tiny", type=Path, required=True, metavar="OUT_DIR", help="where to save the model")
    parser.set_defaults(command=run_init_model)


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    """Run :func:`swerl_core.train.run` for the given flags and print the result."""
    from swerl_core.cli_progress import ProgressLines
    from swerl_core.errors import SwerlError
    from swerl_core.train import TrainRequest, run
    from swerl_core.train.config import load_train_config

    cfg = load_train_config(args.recipe)
    if args.deepspeed is not None:
        cfg = replace(cfg, deepspeed=args.deepspeed)
    if not (args.snapshot or cfg.snapshot):
        raise SwerlError(f"no snapshot: pass --snapshot ID or set `snapshot` in {args.recipe}")
    request = TrainRequest(
        recipe=cfg,
        stage=args.stage,
        snapshot_id=args.snapshot,
        resume=args.resume,
        run_name=args.run,
        base_model=args.model,
    )
    lines = ProgressLines()
    try:
        result = run(settings, request, lines)
    finally:
        lines.close()
    reward = result.metrics.get("reward")
    shown = f" reward={reward:.3f}" if reward is not None else ""
    print(f"{result.run_name}: {result.steps} steps in {result.seconds:.0f}s{shown}")
    print(f"model: {result.model_dir}")
    print(f"mlflow run: {result.mlflow_run_id} ({settings.tracking_uri})")
    return 0


def run_init_model(args: argparse.Namespace, settings: Settings) -> int:
    """Write the tiny model and print where it went and its size."""
    from swerl_core.train.tiny_model import init_tiny_model, parameter_count

    out = init_tiny_model(args.tiny)
    print(f"tiny model ({parameter_count(out) / 1e6:.1f}M parameters) written to {out}", file=sys.stdout)
    return 0
