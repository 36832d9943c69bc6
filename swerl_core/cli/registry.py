"""The ``swerl register``, ``promote``, ``rollback`` and ``models`` verbs, thin over :mod:`swerl_core.registry`.

Registered into :mod:`swerl_core.cli`. ``register`` reuses the checkpoint's latest evaluation on the
snapshot and evaluation protocol (or runs one), and evaluates the champion under the same protocol when it has no such
evaluation yet, so the gate always compares like with like. ``models``, ``promote`` and ``rollback`` never create a
registry: with none yet they say so.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from swerl_core.cli.arguments import add_setting_flag, add_verb, model_argument, require_home, version_number
from swerl_core.config import Settings
from swerl_core.models import resolve_model_reference
from swerl_core.registry import RegistryError
from swerl_core.snapshots import default_snapshot


def register_register(verbs: Any) -> None:
    """Add ``swerl register`` to the CLI."""
    parser = add_verb(
        verbs,
        "register",
        run_register,
        help="register a checkpoint as a model version and gate it against the champion",
        description=(
            "Log a consolidated HF checkpoint as a new MLflow model version with its provenance, judge it "
            "against the champion on the same held-out snapshot and K, and give a passing version the "
            "alias challenger (and champion under --policy auto)."
        ),
        needs_home=True,
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR|latest|models:/NAME@ALIAS|s3://…/final",
        help=(
            "consolidated checkpoint directory (relative to the cwd or $SWERL_HOME), `latest` (the newest finished "
            "training run's final checkpoint), a registry URI or a checkpoint on shared storage"
        ),
    )
    parser.add_argument(
        "--snapshot", metavar="ID", help="held-out snapshot the gate compares on (default: the newest curated)"
    )
    add_setting_flag(parser, "--samples", "evaluate.samples", "samples per instance", metavar="K")
    add_setting_flag(
        parser, "--policy", "registry.policy", "auto: promote a passing version at once", choices=("auto", "manual")
    )


def register_promote(verbs: Any) -> None:
    """Add ``swerl promote`` to the CLI."""
    parser = add_verb(
        verbs,
        "promote",
        run_promote,
        help="make a model version the champion",
        description="Move the alias champion to VERSION; a version that failed the gate needs --force and --reason.",
    )
    parser.add_argument("version", type=version_number, metavar="VERSION", help="model version number (3 or v3)")
    parser.add_argument("--reason", default="", help="why (recorded with the move; required with --force)")
    parser.add_argument("--force", action="store_true", help="promote even though the version failed the gate")


def register_rollback(verbs: Any) -> None:
    """Add ``swerl rollback`` to the CLI."""
    parser = add_verb(
        verbs,
        "rollback",
        run_rollback,
        help="move champion back to its previous holder",
        description="Move the alias champion back to the version that held it before the current one.",
    )
    parser.add_argument("--reason", default="", help="why (recorded with the move)")


def register_models(verbs: Any) -> None:
    """Add ``swerl models`` to the CLI."""
    add_verb(
        verbs,
        "models",
        run_models,
        help="list model versions with aliases and gate verdicts",
        description="List the registered model's versions, newest first: aliases, gate verdict, mean reward, and "
        "what the gate judged each against (the champion, the model it was trained from, or the floor).",
    )


def run_register(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate (if needed) and register ``args.model``; prints the version, verdict and alias moves."""
    from swerl_core.cli.progress import ProgressLines
    from swerl_core.registry import RegisterRequest, run

    checkpoint = checkpoint_dir(settings, model_argument(args.model, settings))
    snapshot = args.snapshot or default_snapshot(settings, None)
    if not snapshot:
        raise RegistryError(f"no snapshot under {settings.snapshots_dir} to gate on: curate one first")
    lines = ProgressLines()
    try:
        result = run(settings, RegisterRequest(checkpoint, snapshot), lines)
    finally:
        lines.close()
    print(f"{result.name} v{result.version}: gate {result.verdict.verdict} — {result.verdict.reason}")
    for mode, report in result.reports.items():
        if report is not result.verdict:
            print(
                f"  {mode} (reported): {report if isinstance(report, str) else report.verdict + ' — ' + report.reason}"
            )
    for move in result.moves:
        print(f"  {move.alias} → v{move.version} (was {_version(move.previous)})")
    return 0


def run_promote(args: argparse.Namespace, settings: Settings) -> int:
    """Promote ``args.version`` to champion."""
    from swerl_core.registry.register import current_user, promote_version

    require_registry(settings)
    move = promote_version(settings, args.version, current_user(), args.reason, force=args.force)
    forced = " (forced)" if move.forced else ""
    print(f"{settings.registry.model_name}: champion → v{move.version}{forced} (was {_version(move.previous)})")
    return 0


def run_rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Move champion back to its previous holder."""
    from swerl_core.registry.register import current_user, rollback_champion

    require_registry(settings)
    move = rollback_champion(settings, current_user(), args.reason)
    print(f"{settings.registry.model_name}: champion → v{move.version} (was {_version(move.previous)})")
    return 0


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    """Print the registered versions."""
    from swerl_core.registry.register import list_versions

    require_registry(settings)
    rows = list_versions(settings)
    print(f"{'version':>7}  {'aliases':<22} {'gate':<12} {'mean reward':>11}  {'snapshot':<16}  judged against")
    for row in rows:
        print(
            f"{row.version:>7}  {','.join(row.aliases) or '-':<22} {row.verdict:<12} "
            f"{row.mean_reward[:11] or '-':>11}  {row.snapshot_id or '-':<16}  {row.against or '-'}"
        )
    return 0


def checkpoint_dir(settings: Settings, model: str) -> Path:
    """The local directory ``model`` names (a registry or ``s3://`` URI is fetched into ``$SWERL_HOME/models``)."""
    from swerl_core.config.storage import is_storage_uri
    from swerl_core.models import mlflow_client, resolve_model

    reference = resolve_model_reference(model, settings.home)
    if is_storage_uri(reference):
        return resolve_model(None, reference, settings.home / "models", settings.storage).local_dir
    if not reference.startswith("models:/"):
        return Path(reference)
    require_registry(settings)
    return resolve_model(mlflow_client(settings.tracking_uri), reference, settings.home / "models").local_dir


def require_registry(settings: Settings) -> None:
    """Refuse, without creating anything, when the default local registry does not exist yet (saying where it
    looked: a missing ``SWERL_HOME`` is named as such)."""
    prefix = "sqlite:///"
    uri = settings.tracking_uri
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_file():
        require_home(settings)
        raise RegistryError(f"no model registry yet (no {uri[len(prefix) :]}); run `swerl register` first")


def _version(version: str | None) -> str:
    return f"v{version}" if version else "none"
