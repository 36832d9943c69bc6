"""The ``swerl evaluate`` verb: flags in, one :func:`swerl_core.evaluate.run` (or SWE-bench) call, metrics out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, the summary to stdout. The endpoint's
API key is read here, once, from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, get_args

from swerl_core.cli.arguments import add_setting_flag, add_verb, model_argument
from swerl_core.config import Secret, Settings
from swerl_core.config.evaluate import Backend
from swerl_core.errors import SwerlError
from swerl_core.models import resolve_model_reference
from swerl_core.snapshots import default_snapshot


def register_evaluate(verbs: Any) -> None:
    """Add ``swerl evaluate`` to the CLI."""
    parser = add_verb(
        verbs,
        "evaluate",
        run_evaluate,
        help="evaluate a checkpoint on held-out PRs (or SWE-bench Verified)",
        description=(
            "Generate K answers per held-out instance of a snapshot, score them with the SWE-RL reward, "
            "save predictions (SWE-bench format) and record metrics in DuckDB and MLflow."
        ),
        needs_home=True,
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR|latest|models:/NAME@ALIAS|s3://…/final",
        help=(
            "a checkpoint directory (relative to the cwd or $SWERL_HOME), `latest` (the newest finished training "
            "run's final checkpoint), a registry URI or a checkpoint on shared storage "
            "(with --backend endpoint: the served model's name)"
        ),
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--snapshot", metavar="ID", help="snapshot whose held-out split is evaluated (default: the newest curated)"
    )
    target.add_argument(
        "--swebench",
        type=Path,
        metavar="FILE",
        help="SWE-bench Verified instance file (JSONL/Parquet) you supply; code from git mirrors",
    )
    add_setting_flag(parser, "--samples", "evaluate.samples", "samples per instance (1 = greedy)", metavar="K")
    add_setting_flag(
        parser,
        "--backend",
        "evaluate.backend",
        "generation backend: transformers, a vLLM engine in this process, or an OpenAI-compatible endpoint",
        choices=get_args(Backend),
    )
    add_setting_flag(
        parser,
        "--endpoint-url",
        "evaluate.endpoint_url",
        "OpenAI-compatible base URL, e.g. http://host:8000/v1",
        metavar="URL",
    )
    add_setting_flag(parser, "--limit", "evaluate.limit", "evaluate only the first N instances (0 = all)", metavar="N")
    add_setting_flag(parser, "--max-new-tokens", "evaluate.max_new_tokens", "generation budget per answer", metavar="N")
    add_setting_flag(
        parser, "--batch-size", "evaluate.batch_size", "prompts per generate() call (transformers)", metavar="N"
    )
    parser.add_argument(
        "--run-name",
        metavar="NAME|ID",
        help="training run (name, or MLflow run id) to log the metrics into (default: the checkpoint's own run)",
    )
    parser.add_argument("--run-id", dest="run_name", help=argparse.SUPPRESS)  # the flag's former name


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Run the evaluation described by ``args`` and print its metrics."""
    from swerl_core.cli.progress import ProgressLines
    from swerl_core.evaluate import EvaluateRequest, run
    from swerl_core.evaluate.evaluation import evaluate_swebench
    from swerl_core.evaluate.resolved import execution_columns
    from swerl_core.store import Store

    key = os.environ.get("OPENAI_API_KEY")
    api_key = Secret(key) if key else None
    model = args.model
    if settings.evaluate.backend != "endpoint":  # the local backends load a directory; an endpoint names a model
        model = resolve_model_reference(model_argument(args.model, settings), settings.home)
    snapshot = args.snapshot or (None if args.swebench else default_snapshot(settings, None))
    if args.swebench is None and not snapshot:
        raise SwerlError(f"no snapshot under {settings.snapshots_dir}: curate one first (or pass --swebench FILE)")
    run_id = training_run_id(settings, args.run_name)
    lines = ProgressLines()
    try:
        if args.swebench is not None:
            store = Store.for_settings(settings)
            report = evaluate_swebench(
                settings, model, args.swebench, store=store, api_key=api_key, run_id=run_id, progress=lines
            )
        else:
            report = run(settings, EvaluateRequest(model, str(snapshot), run_id=run_id, api_key=api_key), lines)
    finally:
        lines.close()
    m = report.metrics
    print(
        f"evaluation {report.evaluation_id}: {report.model_ref} on {report.split} {report.snapshot_id} "
        f"({m.n_instances} instances × K={m.samples_per_instance})"
    )
    for field in dataclasses.fields(m):
        value = getattr(m, field.name)
        if field.name != "per_repo":
            print(f"  {field.name:<20} {value:.4f}" if isinstance(value, float) else f"  {field.name:<20} {value}")
    for repo, rates in m.per_repo.items():
        print(f"  {repo:<20} mean reward {rates['mean_reward']:.4f} over {int(rates['n_instances'])} instances")
    if report.execution is not None:
        for name, value in execution_columns(report.execution).items():
            print(f"  {name:<20} {value}")
        reasons = ", ".join(f"{reason} {count}" for reason, count in report.execution.reasons.items())
        print(f"  {'samples by verdict':<20} {reasons}")
    if report.harness_note:
        print(f"  {report.harness_note}", file=sys.stderr if report.resolved_rate is None else sys.stdout)
    print(f"  predictions {report.predictions_path}")
    print(f"  mlflow run {report.mlflow_run_id}")
    return 0


def training_run_id(settings: Settings, run: str | None) -> str | None:
    """The MLflow run id of a training run named ``run`` (its folder under checkpoints/), else ``run`` as an id."""
    if run is None:
        return None
    from swerl_core.runs import read_run_id

    return read_run_id(settings.checkpoints_dir / run) or run
