"""The ``swerl evaluate`` verb: flags in, one :func:`swerl_core.evaluate.run` (or SWE-bench) call, metrics out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, the summary to stdout. The endpoint's
API key is read here, once, from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swerl_core.config import Secret, Settings


def register_evaluate(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl evaluate`` to the CLI."""
    parser = verbs.add_parser(
        "evaluate",
        help="evaluate a checkpoint on held-out PRs (or SWE-bench Verified)",
        description=(
            "Generate K answers per held-out instance of a snapshot, score them with the SWE-RL reward, "
            "save predictions (SWE-bench format) and record metrics in DuckDB and MLflow."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH|models:/NAME@ALIAS",
        help="a checkpoint directory or a registry URI (with --backend endpoint: the served model)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--snapshot", metavar="ID", help="snapshot whose held-out split is evaluated")
    target.add_argument(
        "--swebench",
        type=Path,
        metavar="FILE",
        help="SWE-bench Verified instance file (JSONL/Parquet) you supply; code from git mirrors",
    )
    parser.add_argument("--samples", type=int, metavar="K", help="samples per instance (1 = greedy)")
    parser.add_argument("--backend", choices=("transformers", "endpoint"), help="generation backend")
    parser.add_argument("--endpoint-url", metavar="URL", help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N instances")
    parser.add_argument("--max-new-tokens", type=int, metavar="N", help="generation budget per answer")
    parser.add_argument("--batch-size", type=int, metavar="N", help="prompts per generate() call (transformers)")
    parser.add_argument("--run-id", metavar="ID", help="MLflow run to log into (default: the checkpoint's run)")
    parser.set_defaults(command=run_evaluate)


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Run the evaluation described by ``args`` and print its metrics."""
    import dataclasses

    from swerl_core.cli_progress import ProgressLines
    from swerl_core.evaluate import EvaluateRequest, run
    from swerl_core.evaluate.evaluation import evaluate_swebench
    from swerl_core.store import Store

    overrides = {
        "samples": args.samples,
        "backend": args.backend,
        "endpoint_url": args.endpoint_url,
        "limit": args.limit,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
    }
    # replace() re-runs validation: a bad flag value fails as a ConfigError naming the setting.
    cfg = dataclasses.replace(settings.evaluate, **{k: v for k, v in overrides.items() if v is not None})
    settings = dataclasses.replace(settings, evaluate=cfg)
    key = os.environ.get("OPENAI_API_KEY")
    api_key = Secret(key) if key else None
    lines = ProgressLines()
    try:
        if args.swebench is not None:
            store = Store.shared(settings.db_path, lock_timeout_s=settings.store.lock_timeout_s)
            report = evaluate_swebench(
                settings, args.model, args.swebench, store=store, api_key=api_key, run_id=args.run_id, progress=lines
            )
        else:
            request = EvaluateRequest(args.model, args.snapshot, run_id=args.run_id, api_key=api_key)
            report = run(settings, request, lines)
    finally:
        lines.close()
    m = report.metrics
    print(
        f"evaluation {report.evaluation_id}: {report.model_ref} on {report.split} {report.snapshot_id} "
        f"({m.n_instances} instances x K={m.samples_per_instance})"
    )
    for key_name, value in m.headline().items():
        print(f"  {key_name:<20} {value:.4f}" if isinstance(value, float) else f"  {key_name:<20} {value}")
    for repo, rates in m.per_repo.items():
        print(f"  {repo:<20} mean reward {rates['mean_reward']:.4f} over {int(rates['n_instances'])} instances")
    if report.harness_note:
        print(f"  {report.harness_note}", file=sys.stderr if report.resolved_rate is None else sys.stdout)
    print(f"  predictions {report.predictions_path}  mlflow run {report.mlflow_run_id}")
    return 0
