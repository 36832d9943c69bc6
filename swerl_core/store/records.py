"""The rows ingest writes, as frozen dataclasses: one class per table (or per row family).

These are plain values; this module must never touch the database, the network or git.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RepoRecord:
    """A repository as the API reports it; ``renamed_from`` is set when GitHub answered 301."""

    name: str
    github_id: int | None
    clone_url: str
    default_branch: str | None
    renamed_from: str | None = None
    mirror_path: str | None = None


@dataclass(frozen=True)
class IssueRecord:
    """A real issue (never a pull request) of ``repo``; null bodies are stored as ``""``."""

    repo: str
    number: int
    github_id: int | None
    title: str
    body: str
    author_login: str | None
    author_type: str | None
    state: str
    state_reason: str | None
    labels: tuple[str, ...]
    comments_count: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class CommentRecord:
    """A conversation comment on an issue or pull request of ``repo``."""

    repo: str
    id: int
    issue_number: int
    author_login: str | None
    author_type: str | None
    body: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FileRecord:
    """One changed file of a pull request, between its merge base and its head."""

    path: str
    old_path: str | None
    status: str
    is_binary: bool
    is_test: bool
    old_blob_sha: str | None
    new_blob_sha: str | None
    old_size: int | None
    new_size: int | None
    additions: int | None
    deletions: int | None


@dataclass(frozen=True)
class LinkRecord:
    """A PR's reference to an issue: where it points, what it turned out to be, where it was seen."""

    issue_repo: str
    issue_number: int
    kind: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class BlobRecord:
    """A git blob's content, stored once per SHA; ``content`` is None for binary or too-large blobs."""

    sha: str
    size: int
    is_binary: bool
    invalid_utf8: bool
    too_large: bool
    content: str | None


@dataclass(frozen=True)
class PullRequestRecord:
    """A merged pull request with everything about its code taken from git."""

    repo: str
    number: int
    github_id: int | None
    title: str
    body: str
    author_login: str | None
    author_type: str | None
    author_is_bot: bool
    labels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime
    base_ref: str
    head_ref: str | None
    base_sha: str
    head_sha: str
    merge_commit_sha: str | None
    merge_base_sha: str
    first_commit_at: datetime | None
    commit_messages: tuple[str, ...]
    code_patch: str
    test_patch: str
    files: tuple[FileRecord, ...] = ()
    links: tuple[LinkRecord, ...] = ()
    links_missing_source: str | None = None  # a link source not asked (``graphql``): re-linked by a later run

    @property
    def has_linked_issue(self) -> bool:
        """Whether any reference resolved to a real issue of this repository."""
        return has_linked_issue(self.repo, self.links)


def has_linked_issue(repo: str, links: Iterable[LinkRecord]) -> bool:
    """Whether any of ``links`` (of a PR in ``repo``) resolved to a real issue of that repository."""
    return any(link.kind == "issue" and link.issue_repo == repo for link in links)


@dataclass(frozen=True)
class UnlinkedPull:
    """A stored PR whose links lack a source: the text its keyword references are read from again."""

    repo: str
    number: int
    title: str
    body: str
    commit_messages: tuple[str, ...]


@dataclass(frozen=True)
class SkippedPR:
    """A pull request that was not kept, with the reason (``draft``, ``head_commit_missing`` …)."""

    repo: str
    number: int
    reason: str
    updated_at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class RepoStatus:
    """What ``swerl status`` shows for one repository."""

    name: str
    pull_requests: int
    skipped: int
    issues: int
    watermark: datetime | None
    last_run_at: datetime | None
    last_run_status: str | None
    links_incomplete: int = 0  # kept PRs linked without a link source, waiting for a run that can ask it


@dataclass(frozen=True)
class RunTotals:
    """The counters of one ingest run, written to ``ingest_runs`` when it ends."""

    status: str
    prs_new: int = 0
    prs_updated: int = 0
    prs_skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    issues_upserted: int = 0
    api_requests: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_s: float = 0.0
    duration_s: float = 0.0
    message: str | None = None


@dataclass(frozen=True)
class SnapshotRecord:
    """One row of ``snapshots`` (migration 2): a curated snapshot and where its manifest is."""

    id: str
    name: str
    created_at: datetime
    train_rows: int
    heldout_rows: int
    manifest_path: str
    config_json: str
    source_watermarks_json: str


@dataclass(frozen=True)
class EvaluationRecord:
    """One row of ``evaluations`` (migrations 3, 4 and 6): a model's metrics on a snapshot under a protocol."""

    id: str
    created_at: datetime
    model_ref: str
    model_name: str | None
    model_version: str | None
    snapshot_id: str
    split: str
    samples: int
    backend: str
    n_instances: int
    n_samples: int
    mean_reward: float
    format_error_rate: float
    exact_match_rate: float
    apply_rate: float
    best_of_k_reward: float
    path_escapes: int
    tokens_generated: int
    per_repo_json: str
    generation_s: float
    reward_s: float
    resolved_rate: float | None
    harness_note: str | None
    predictions_path: str
    mlflow_run_id: str | None  # the run it is (or is to be) logged into; None: a new run in swerl-evaluate
    protocol: str
    protocol_json: str
    failure_rates_json: str
    execution_json: str | None  # evaluate.resolved.ExecutionSummary; NULL: no answer was run against tests
    mlflow_logged: bool
