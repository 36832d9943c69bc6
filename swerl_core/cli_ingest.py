"""The ``swerl ingest`` and ``swerl status`` verbs: flags in, one :func:`swerl_core.ingest.run` call, lines out.

Registered into :mod:`swerl_core.cli`. Progress goes to stderr, results to stdout. This module must
never print the token; it reads it once with :func:`github_token` and hands it to the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from swerl_core.cli_types import iso_datetime
from swerl_core.config import Settings, github_token
from swerl_core.errors import SwerlError


def register_ingest(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl ingest`` to the CLI."""
    parser = verbs.add_parser(
        "ingest",
        help="fetch fresh merged PRs, their issues and their code into DuckDB",
        description=(
            "Ingest merged pull requests of GitHub repositories "
            "(incremental: reruns fetch only what is new). The token is read from GITHUB_TOKEN."
        ),
    )
    parser.add_argument(
        "--repo",
        action="append",
        type=_repo_name,
        metavar="OWNER/NAME",
        help="repository to ingest (repeatable; default: ingest.repos from the config)",
    )
    parser.add_argument(
        "--since",
        type=iso_datetime,
        metavar="ISO-DATE",
        help="on a repository's first run, keep PRs merged at or after this time (e.g. 2025-01-31)",
    )
    parser.add_argument("--api-url", metavar="URL", help="GitHub API base URL (default $SWERL_GITHUB_API_URL)")
    parser.set_defaults(command=run_ingest)


def register_status(verbs: argparse._SubParsersAction) -> None:
    """Add ``swerl status`` to the CLI."""
    parser = verbs.add_parser(
        "status",
        help="show what the database holds per repository",
        description="Per repository: kept PRs, skipped PRs, issues, PR watermark and the last ingest run.",
    )
    parser.set_defaults(command=run_status)


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run :func:`swerl_core.ingest.run` for the given flags and print one summary line per repo."""
    from swerl_core.cli_progress import ProgressLines
    from swerl_core.ingest import IngestRequest, run

    if args.api_url:
        settings = _with_api_url(settings, args.api_url)
    if not args.repo and not settings.ingest.repos:
        raise SwerlError("no repository given: pass --repo OWNER/NAME or set ingest.repos in the config")
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
        print(
            f"{repo.repo}{renamed}: {repo.prs_new} new, {repo.prs_updated} updated, "
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
        rows = store.repo_status()
    if not rows:
        print("no repositories ingested yet")
        return 0
    for row in rows:
        mark = f"{row.watermark:%Y-%m-%dT%H:%M:%SZ}" if row.watermark else "none"
        last = f"{row.last_run_status} at {row.last_run_at:%Y-%m-%dT%H:%M:%SZ}" if row.last_run_at else "never"
        print(
            f"{row.name}: {row.pull_requests} PRs, {row.skipped} skipped, {row.issues} issues, "
            f"watermark {mark}, last run {last}"
        )
    return 0


def _with_api_url(settings: Settings, url: str) -> Settings:
    return dataclasses.replace(settings, github=dataclasses.replace(settings.github, api_url=url))


def _repo_name(text: str) -> str:
    owner, _, name = text.strip().partition("/")
    if not owner or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME, got {text!r}")
    return f"{owner}/{name}"
