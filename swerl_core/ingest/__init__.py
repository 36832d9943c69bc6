"""Stage 1 of the pipeline: fresh merged PRs, their issues and their code, into DuckDB.

Entry point: :func:`ingest`. Never imports Prefect; flows call this function.
"""

from swerl_core.ingest.errors import IngestError
from swerl_core.ingest.payloads import PullSummary
from swerl_core.ingest.pipeline import IngestResult, RepoIngest, ingest

__all__ = ["IngestError", "IngestResult", "PullSummary", "RepoIngest", "ingest"]
