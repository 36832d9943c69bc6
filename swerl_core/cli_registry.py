"""The ``swerl register``, ``promote``, ``rollback`` and ``models`` verbs, thin over :mod:`swerl_core.registry`.

Registered into :mod:`swerl_core.cli`. ``register`` reuses the checkpoint's latest evaluation on the
snapshot and evaluation protocol (or runs one), and evaluates the champion under the same protocol when it has no such
evaluation yet, so the gate always compares like with like.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from swerl_core.config import Settings


def register_register(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl register`` to the CLI."""
    parser = verbs.add_parser(
        "register",
        help="register a checkpoint as a model version and gate it against the champion",
        description=(
            "Log a consolidated HF checkpoint as a new MLflow model version with its provenance, judge it "
            "against the champion on the same held-out snapshot and K, and give a passing version the "
            "alias challenger (and champion under --policy auto)."
        ),
    )
    parser.add_argument("--model", required=True, type=Path, metavar="DIR", help="consolidated checkpoint directory")
    parser.add_argument("--snapshot", required=True, metavar="ID", help="held-out snapshot the gate compares on")
    parser.add_argument("--samples", type=int, metavar="K", help="samples per instance (default evaluate.samples)")
    parser.add_argument("--policy", choices=("auto", "manual"), help="auto: promote a passing version at once")
    parser.set_defaults(command=run_register)


def register_promote(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl promote`` to the CLI."""
    parser = verbs.add_parser(
        "promote",
        help="make a model version the champion",
        description="Move the alias champion to VERSION; a version that failed the gate needs --force and --reason.",
    )
    parser.add_argument("version", metavar="VERSION", help="model version number")
    parser.add_argument("--reason", default="", help="why (recorded with the move; required with --force)")
    parser.add_argument("--force", action="store_true", help="promote even though the version failed the gate")
    parser.set_defaults(command=run_promote)


def register_rollback(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl rollback`` to the CLI."""
    parser = verbs.add_parser(
        "rollback",
        help="move champion back to its previous holder",
        description="Move the alias champion back to the version that held it before the current one.",
    )
    parser.add_argument("--reason", default="", help="why (recorded with the move)")
    parser.set_defaults(command=run_rollback)


def register_models(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl models`` to the CLI."""
    parser = verbs.add_parser(
        "models",
        help="list model versions with aliases and gate verdicts",
        description="List the registered model's versions, newest first: aliases, gate verdict, mean reward.",
    )
    parser.set_defaults(command=run_models)


def run_register(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate (if needed) and register ``args.model``; prints the version, verdict and alias moves."""
    from swerl_core.cli_progress import ProgressLines
    from swerl_core.registry import RegisterRequest, run

    evaluate_cfg = (
        settings.evaluate if args.samples is None else dataclasses.replace(settings.evaluate, samples=args.samples)
    )
    registry_cfg = (
        settings.registry if args.policy is None else dataclasses.replace(settings.registry, policy=args.policy)
    )
    settings = dataclasses.replace(settings, evaluate=evaluate_cfg, registry=registry_cfg)
    lines = ProgressLines()
    try:
        result = run(settings, RegisterRequest(args.model, args.snapshot), lines)
    finally:
        lines.close()
    print(f"{result.name} v{result.version}: gate {result.verdict.verdict} — {result.verdict.reason}")
    for move in result.moves:
        print(f"  {move.alias} -> v{move.version} (was {move.previous or 'none'})")
    return 0


def run_promote(args: argparse.Namespace, settings: Settings) -> int:
    """Promote ``args.version`` to champion."""
    from swerl_core.registry.register import current_user, promote_version

    move = promote_version(settings, args.version, current_user(), args.reason, force=args.force)
    forced = " (forced)" if move.forced else ""
    print(f"{settings.registry.model_name}: champion -> v{move.version}{forced} (was {move.previous or 'none'})")
    return 0


def run_rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Move champion back to its previous holder."""
    from swerl_core.registry.register import current_user, rollback_champion

    move = rollback_champion(settings, current_user(), args.reason)
    print(f"{settings.registry.model_name}: champion -> v{move.version} (was v{move.previous})")
    return 0


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    """Print the registered versions."""
    from swerl_core.registry.register import list_versions

    rows = list_versions(settings)
    print(f"{'version':>7}  {'aliases':<22} {'gate':<8} {'mean reward':>11}  snapshot")
    for row in rows:
        print(
            f"{row.version:>7}  {','.join(row.aliases) or '-':<22} {row.verdict:<8} "
            f"{row.mean_reward[:11] or '-':>11}  {row.snapshot_id or '-'}"
        )
    return 0
