"""The ``swerl curate`` verb: flags in, one :func:`swerl_core.curate.run` call, the funnel and the
snapshot id/path out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, results to stdout; a
:class:`~swerl_core.curate.CurateError` becomes one line on stderr and a non-zero exit code (the CLI's job).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from swerl_core.cli.arguments import add_setting_flag, add_verb, iso_datetime
from swerl_core.config import Settings
from swerl_core.errors import SwerlError


def register_curate(verbs: Any) -> None:
    """Add ``swerl curate`` to the CLI."""
    parser = add_verb(
        verbs,
        "curate",
        run_curate,
        help="filter ingested PRs into a versioned, decontaminated snapshot (train + held-out)",
        description=(
            "Curate the pull requests in DuckDB into $SWERL_HOME/snapshots/<id>/ (train.parquet, heldout.parquet, "
            "manifest.json). Unchanged input and settings give the same snapshot id and write nothing."
        ),
        needs_home=True,
    )
    parser.add_argument("--name", default="snapshot", help="a human name recorded with the snapshot")
    add_setting_flag(
        parser,
        "--heldout-after",
        "curate.heldout_after",
        "PRs merged after this time form the held-out split",
        type=iso_datetime,
        metavar="ISO-DATE",
    )


def run_curate(args: argparse.Namespace, settings: Settings) -> int:
    """Run curation for the given flags; print the funnel and the snapshot id and path."""
    from swerl_core.cli.progress import ProgressLines
    from swerl_core.curate import CurateRequest, run
    from swerl_core.curate.funnel import render_funnel
    from swerl_core.curate.pipeline import EmptySnapshotError

    request = CurateRequest(name=args.name)  # a bad name is refused before anything is read
    if not settings.db_path.is_file():
        raise SwerlError(f"no database at {settings.db_path}; run `swerl ingest` first")
    lines = ProgressLines()
    try:
        snapshot = run(settings, request, lines)
    except EmptySnapshotError as exc:
        lines.close()
        print(render_funnel(exc.funnel), file=sys.stderr)
        raise
    lines.close()
    print(render_funnel(snapshot.funnel))
    if snapshot.execution is not None:
        counts = ", ".join(f"{status} {n}" for status, n in sorted(snapshot.execution.items()))
        print(f"validated instances: {counts}")
    state = "created" if snapshot.created else "unchanged input: existing snapshot, nothing written"
    print(f"snapshot {snapshot.id} ({state}): {snapshot.train_rows} train, {snapshot.heldout_rows} held-out")
    print(snapshot.path)
    if snapshot.uri:
        print(snapshot.uri)
    return 0
