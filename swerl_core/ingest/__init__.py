"""Stage 1 of the pipeline: fresh merged PRs, their issues and their code, into DuckDB.

Entry point: :func:`run` (an :class:`IngestRequest` in, an :class:`~.pipeline.IngestResult` out); the work
happens in :func:`.pipeline.ingest`. Never imports Prefect; flows and the CLI call :func:`run`.
Importing this package is cheap: PyGithub and DuckDB load when :func:`run` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from swerl_core.config import Secret, Settings
from swerl_core.ingest.errors import IngestError
from swerl_core.ingest.scope import requested_repos
from swerl_core.progress import ProgressCallback

if TYPE_CHECKING:
    from swerl_core.ingest.pipeline import IngestResult


@dataclass(frozen=True)
class IngestRequest:
    """What to ingest: ``repos`` (``()``: ``settings.ingest.repos``), a first-run ``since``, the GitHub token."""

    repos: tuple[str, ...] = ()
    since: datetime | None = None  # None: settings.ingest.since
    token: Secret | None = None


def run(settings: Settings, request: IngestRequest, progress: ProgressCallback | None = None) -> IngestResult:
    """Ingest the requested repositories into the store at ``settings.db_path``.

    The store is shared (:meth:`~swerl_core.store.Store.for_settings`): each batch is one short write under the
    writer lock, waited for up to ``settings.store.lock_timeout_s``, so other stages use it meanwhile.
    Raises :class:`IngestError` with a one-line reason; see :func:`.pipeline.ingest`.
    """
    from swerl_core.ingest.pipeline import ingest
    from swerl_core.store import Store

    store = Store.for_settings(settings)
    return ingest(store, settings, request.token, repos=request.repos or None, since=request.since, progress=progress)


def __getattr__(name: str) -> Any:
    # The result types live beside the pipeline; load it only when someone asks for them.
    if name in ("IngestResult", "RepoIngest"):
        from swerl_core.ingest import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IngestError", "IngestRequest", "IngestResult", "RepoIngest", "requested_repos", "run"]
