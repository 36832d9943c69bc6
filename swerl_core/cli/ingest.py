"""The ``swerl ingest`` and ``swerl status`` verbs: flags in, one :func:`swerl_core.ingest.run` call, lines out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, results to stdout. This module must
never print the token; it reads it once with :func:`github_token` and hands it to the library.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from swerl_core.cli.arguments import add_setting_flag, add_verb, iso_datetime, repo_name
from swerl_core.config import Settings, github_token
from swerl_core.errors import SwerlError


def register_ingest(verbs: Any) -> None:
    """Add ``swerl ingest`` to the CLI."""
    parser = add_verb(
        verbs,
        "ingest",
        run_ingest,
        help="fetch fresh merged PRs, their issues and their code into DuckDB",
        description=(
            "Ingest merged pull requests of GitHub repositories "
            "(incremental: reruns fetch only what is new). The token is read from GITHUB_TOKEN."
        ),
    )
    parser.add_argument(
        "--repo",
        action="append",
        type=repo_name,
        metavar="OWNER/NAME",
        help="repository to ingest (repeatable; default: ingest.repos from the config)",
    )
    parser.add_argument(
        "--since",
        type=iso_datetime,
        metavar="ISO-DATE",
        help="on a repository's first run, keep PRs merged at or after this time (e.g. 2025-01-31)",
    )
    add_setting_flag(
        parser, "--api-url", "github.api_url", "GitHub API base URL ($SWERL_GITHUB_API_URL)", metavar="URL"
    )


def register_status(verbs: Any) -> None:
    """Add ``swerl status`` to the CLI."""
    add_verb(
        verbs,
        "status",
        run_status,
        help="show what the database holds per repository",
        description="Per repository: kept PRs, skipped PRs, issues, PR watermark and the last ingest run.",
        needs_home=True,
    )


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run :func:`swerl_core.ingest.run` for the given flags and print one summary line per repo."""
    from swerl_core.cli.progress import ProgressLines
    from swerl_core.ingest import IngestError, IngestRequest, requested_repos, run

    try:
        requested_repos(settings, args.repo)
    except IngestError as exc:
        raise IngestError(f"{exc}; or pass --repo OWNER/NAME") from None
    request = IngestRequest(repos=tuple(args.repo or ()), since=args.since, token=github_token())
    lines = ProgressLines()
    try:
        result = run(settings, request, lines)
    finally:
        lines.close()
    for repo in result.repos:
        skipped = ", ".join(f"{reason} {n}" for reason, n in repo.skipped_by_reason.items()) or "none"
        renamed = f" (renamed from {repo.renamed_from})" if repo.renamed_from else ""
        mark = f"; watermark {repo.watermark:%Y-%m-%dT%H:%M:%SZ}" if repo.watermark else ""
        relinked = f", {repo.prs_relinked} re-linked" if repo.prs_relinked else ""
        print(
            f"{repo.repo}{renamed}: {repo.prs_new} new, {repo.prs_updated} updated{relinked}, "
            f"{repo.prs_unchanged} unchanged, skipped {skipped}; "
            f"{repo.issues_upserted} issues, {repo.comments_upserted} comments{mark}"
        )
    print(
        f"run {result.run_id[:12]}: {result.status}, {result.api_requests} API requests, "
        f"{result.rate_limit_waits} rate-limit waits ({result.rate_limit_wait_s:.1f}s), "
        f"{result.duration_s:.1f}s"
    )
    if result.message:
        print(f"swerl ingest: {result.message}", file=sys.stderr)
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print, per repository, what the database holds."""
    from swerl_core.store import Store

    if not settings.db_path.exists():
        raise SwerlError(f"no database at {settings.db_path}; run `swerl ingest` first")
    with Store.open(settings.db_path, read_only=True) as store:
        rows = store.ingest.repo_status()
    if not rows:
        print("no repositories ingested yet")
        return 0
    for row in rows:
        mark = f"{row.watermark:%Y-%m-%dT%H:%M:%SZ}" if row.watermark else "none"
        last = f"{row.last_run_status} at {row.last_run_at:%Y-%m-%dT%H:%M:%SZ}" if row.last_run_at else "never"
        incomplete = (
            f"; {row.links_incomplete} PRs linked without GraphQL (an ingest with a token completes them)"
            if row.links_incomplete
            else ""
        )
        print(
            f"{row.name}: {row.pull_requests} PRs, {row.skipped} skipped, {row.issues} issues, "
            f"watermark {mark}, last run {last}{incomplete}"
        )
    return 0
