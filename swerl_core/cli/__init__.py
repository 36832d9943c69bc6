"""``swerl …``: thin subcommands over the stage functions, one module per verb group.

Each verb parses its flags, loads :class:`~swerl_core.config.Settings` once (flags that override a setting land
there as dotted keys), calls one library function and prints its result. Heavy libraries (torch, transformers,
mlflow, prefect) are imported inside the verb that needs them, so ``swerl --help`` stays instant.

Errors: a :class:`SwerlError` becomes a one-line message on stderr and its exit code; any other exception
becomes one line naming the error and the log file under ``SWERL_HOME`` that holds its traceback (exit 1);
``--debug`` prints the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from swerl_core.cli.arguments import SETTING_PREFIX, HelpFormatter, require_home, setting_overrides
from swerl_core.cli.crash import report_crash
from swerl_core.cli.curate import register_curate
from swerl_core.cli.demo import register_demo
from swerl_core.cli.evaluate import register_evaluate
from swerl_core.cli.ingest import register_ingest, register_status
from swerl_core.cli.k8s import register_render_k8s
from swerl_core.cli.registry import register_models, register_promote, register_register, register_rollback
from swerl_core.cli.train import register_init_model, register_train
from swerl_core.config import Settings, load_settings
from swerl_core.errors import SwerlError
from swerl_core.interrupts import interrupt_exit_code, interrupted_by, interruptible
from swerl_core.quiet import quiet_libraries

Command = Callable[[argparse.Namespace, Settings], int]

# Pipeline order: this is the order `swerl --help` lists them in.
_VERBS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    register_ingest,
    register_status,
    register_curate,
    register_init_model,
    register_train,
    register_evaluate,
    register_register,
    register_promote,
    register_rollback,
    register_models,
    register_demo,
    register_render_k8s,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``swerl`` argument parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="swerl",
        description="Keep a code LLM learning from fresh GitHub history, the SWE-RL way.",
        epilog="Run `swerl VERB --help` for a verb's flags. `swerl demo` runs every stage offline.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="YAML settings file (sections: github, ingest, curate, …)"
    )
    parser.add_argument(
        "--home",
        dest=SETTING_PREFIX + "home",
        type=Path,
        metavar="DIR",
        help="where data lands (default: $SWERL_HOME or ./data)",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for register in _VERBS:
        register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swerl`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    quiet_libraries()
    settings: Settings | None = None
    try:
        with interruptible():  # SIGTERM and SIGHUP stop a verb as Ctrl-C does: what it started is cleaned up
            settings = load_settings(args.config, overrides=setting_overrides(args))
            if args.needs_home and not settings.storage.uri:  # with shared storage, a fresh home fills from the bucket
                require_home(settings)
            command: Command = args.command
            return command(args, settings)
    except SwerlError as exc:
        print(f"swerl {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"swerl {args.verb}: {interrupted_by(exc)}", file=sys.stderr)
        return interrupt_exit_code(exc)
    except Exception as exc:  # the top-level rule: one line, the traceback in a log file
        return report_crash(args.verb, exc, settings, debug=args.debug)
