"""The ``ingest`` flow: one task per repository (retried on transient failures only), then a summary table."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.bridge import flow_settings, github_secret, swerl_logs
from swerl_core.ingest import IngestRequest, IngestResult, requested_repos
from swerl_core.ingest import run as ingest_repos
from swerl_core.ingest.failures import is_transient


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 (Prefect's retry_condition_fn signature)
    try:
        state.result()
    except BaseException as exc:  # the task's own failure, re-raised by result()
        return is_transient(exc)
    return False


@task(tags=["github-api"], retries=3, retry_delay_seconds=[2, 30, 120], retry_condition_fn=_transient)
def ingest_repo(repo: str, since: datetime | None = None) -> IngestResult:
    """Ingest one repository into the store (incremental: only what changed since its watermark)."""
    return ingest_repos(flow_settings(), IngestRequest((repo,), since, github_secret()))


def _run_name() -> str:
    from prefect.runtime import flow_run

    repos = flow_run.parameters.get("repos") or flow_settings().ingest.repos
    return "ingest " + (", ".join(repos) or "(no repository)")


@flow(name="ingest", flow_run_name=_run_name, log_prints=True)
def ingest(repos: list[str] | None = None, since: datetime | None = None) -> list[IngestResult]:
    """Ingest ``repos`` (default: the settings' ``ingest.repos``; neither refuses) and publish a per-repository
    table."""
    with swerl_logs():
        names = requested_repos(flow_settings(), repos)
        results = [ingest_repo(repo, since) for repo in names]
        rows = [
            {
                "repo": r.repo,
                "new PRs": r.prs_new,
                "updated PRs": r.prs_updated,
                "skipped PRs": r.prs_skipped,
                "skipped by reason": ", ".join(f"{k}: {v}" for k, v in sorted(r.skipped_by_reason.items())) or "-",
                "API requests": res.api_requests,
                "rate-limit waits": f"{res.rate_limit_waits} ({res.rate_limit_wait_s:.0f} s)",
                "status": res.status,
                "note": res.message or "-",
            }
            for res in results
            for r in res.repos
        ]
        create_table_artifact(rows, key="ingest-summary", description="Pull requests ingested per repository")
        return results
