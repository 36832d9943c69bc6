"""Which repositories an ingest covers: the ones requested, else the settings' ``ingest.repos``.

The one place that decides it, for the CLI, the flows and the pipeline alike; it never talks to GitHub.
"""

from __future__ import annotations

from collections.abc import Sequence

from swerl_core.config import Settings
from swerl_core.ingest.errors import IngestError


def requested_repos(settings: Settings, repos: Sequence[str] | None = None) -> tuple[str, ...]:
    """The repositories an ingest covers: ``repos``, else the settings' ``ingest.repos``.

    Raises :class:`IngestError` when both are empty: an ingest of nothing is a mistake (a schedule without
    repositories), never a successful run.
    """
    names = tuple(repos or settings.ingest.repos)
    if not names:
        raise IngestError(
            "no repository to ingest: none requested and ingest.repos is empty "
            "(set it in the settings file, or SWERL_INGEST__REPOS=owner/name,owner/other)"
        )
    return names
