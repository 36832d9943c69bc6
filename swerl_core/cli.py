"""``swerl …``: thin subcommands over the stage functions.

Each verb parses its flags, loads :class:`~swerl_core.config.Settings` once, calls one library
function and prints its result. Heavy libraries (torch, transformers, mlflow, prefect) are imported
inside the verb that needs them, so ``swerl --help`` stays instant. A :class:`SwerlError` becomes a
one-line message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from swerl_core.cli_curate import register_curate
from swerl_core.cli_evaluate import register_evaluate
from swerl_core.cli_ingest import register_ingest, register_status
from swerl_core.cli_k8s import register_render_k8s
from swerl_core.cli_registry import register_models, register_promote, register_register, register_rollback
from swerl_core.cli_train import register_init_model, register_train
from swerl_core.config import Settings, load_settings
from swerl_core.errors import SwerlError

Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """The ``swerl`` argument parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="swerl",
        description="Keep a code LLM learning from fresh GitHub history, the SWE-RL way.",
    )
    parser.add_argument("--config", type=Path, help="YAML settings file (sections: github, ingest, reward, …)")
    parser.add_argument("--home", type=Path, help="where data lands (default $SWERL_HOME or ./data)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for register in _VERBS:
        register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swerl`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, overrides={"home": args.home})
        command: Command = args.command
        return command(args, settings)
    except SwerlError as exc:
        print(f"swerl {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"swerl {args.verb}: interrupted", file=sys.stderr)
        return 130


def _register_demo(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "demo",
        help="run the offline sample world through the pipeline",
        description="Run the offline demo: the SWE-RL prompt and reward on a worked example.",
    )
    parser.set_defaults(command=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from swerl_core.demo.walkthrough import run_demo

    run_demo(settings, out=sys.stdout)
    return 0


_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_demo,
    register_ingest,
    register_status,
    register_curate,
    register_evaluate,
    register_register,
    register_promote,
    register_rollback,
    register_train,
    register_init_model,
    register_models,
    register_render_k8s,
]


if __name__ == "__main__":
    sys.exit(main())
