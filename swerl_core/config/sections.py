"""The settings sections of the library's own parts: GitHub access, ingest, reward, the store, the train launcher.

Each section is one frozen dataclass, checked once when it is built; errors name the key and what it
accepts. The stage sections with more to say live beside this module (:mod:`.curate`, :mod:`.evaluate`,
:mod:`.registry`), shared storage in :mod:`.storage`; :class:`~.settings.Settings` composes them all.
This module never reads the environment or a file (:mod:`.loading` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from swerl_core.errors import require_setting
from swerl_core.repo_names import PUBLIC_GITHUB_API, is_repository_name


@dataclass(frozen=True)
class GitHubConfig:
    """How to talk to GitHub (or GitHub Enterprise, or the local sample server)."""

    api_url: str = PUBLIC_GITHUB_API
    per_page: int = 100
    timeout_s: float = 30.0
    max_retries: int = 5
    backoff_s: float = 1.0
    seconds_between_requests: float = 0.25
    max_rate_limit_wait_s: float = 900.0
    max_backoff_s: float = 60.0  # cap of the exponential backoff between retries of 5xx / resets / timeouts
    secondary_rate_wait_s: float = 60.0  # wait after a secondary rate limit that gives no Retry-After
    use_graphql: bool = True
    graphql_batch_size: int = 100  # pull requests per GraphQL closingIssuesReferences query
    local_clones: bool = False  # accept file:// and path clone URLs (the sample world, tests)

    def __post_init__(self) -> None:
        url = self.api_url
        require_setting(is_http_url(url), "github.api_url", f"an http(s)://HOST[/PATH] URL, got {url!r}")
        require_setting(1 <= self.per_page <= 100, "github.per_page", "an integer in 1..100")
        require_setting(self.timeout_s > 0, "github.timeout_s", "a positive number")
        require_setting(self.max_retries >= 0, "github.max_retries", "a non-negative integer")
        require_setting(self.max_rate_limit_wait_s >= 0, "github.max_rate_limit_wait_s", "a non-negative number")
        require_setting(self.backoff_s >= 0, "github.backoff_s", "a non-negative number")
        require_setting(self.max_backoff_s >= 0, "github.max_backoff_s", "a non-negative number")
        require_setting(self.secondary_rate_wait_s >= 0, "github.secondary_rate_wait_s", "a non-negative number")
        require_setting(self.seconds_between_requests >= 0, "github.seconds_between_requests", "a non-negative number")
        require_setting(1 <= self.graphql_batch_size <= 100, "github.graphql_batch_size", "an integer in 1..100")


@dataclass(frozen=True)
class IngestConfig:
    """What to ingest: repositories ``owner/name`` and the earliest merge time on a first run."""

    repos: tuple[str, ...] = ()
    since: datetime | None = None
    batch_size: int = 50  # pull requests committed per transaction (and per watermark step)
    git_workers: int = 4  # threads running git for different pull requests at once
    max_blob_bytes: int = 1_000_000  # larger file contents are recorded (size, SHA) but not stored

    def __post_init__(self) -> None:
        for repo in self.repos:
            require_setting(is_repository_name(repo), "ingest.repos", f"entries like OWNER/NAME, got {repo!r}")
        require_setting(self.batch_size >= 1, "ingest.batch_size", "a positive integer")
        require_setting(self.git_workers >= 1, "ingest.git_workers", "a positive integer")
        require_setting(self.max_blob_bytes >= 0, "ingest.max_blob_bytes", "a non-negative integer")


@dataclass(frozen=True)
class RewardConfig:
    """How rewards are computed in batch (values never depend on these)."""

    workers: int = 0  # 0 = every core

    def __post_init__(self) -> None:
        require_setting(self.workers >= 0, "reward.workers", "0 (all cores) or a positive integer")


@dataclass(frozen=True)
class StoreConfig:
    """How stages share the DuckDB store: how long a writer waits for the writer lock (and readers for a write)."""

    lock_timeout_s: float = 60.0  # wait this long for another process's write to finish, then fail naming it

    def __post_init__(self) -> None:
        require_setting(self.lock_timeout_s >= 0, "store.lock_timeout_s", "a non-negative number of seconds")


@dataclass(frozen=True)
class KubernetesConfig:
    """Where training runs when ``train.launcher`` is ``kubernetes``: the cluster side of the run (sizes stay in
    the recipe). Credentials come from a kubeconfig (this file, else ``$KUBECONFIG`` or ``~/.kube/config``) or,
    inside a pod, from its service account; swerl holds none."""

    namespace: str = "swerl"
    nodes: int = 1
    gpus_per_node: int = 8
    trainer_image: str = "swerl-trainer:0.1.0"
    rollout_image: str = "swerl-rollout:0.1.0"
    storage_class: str | None = None  # ReadWriteMany class of the SWERL_HOME claim; None: the cluster's default
    kubeconfig: Path | None = None
    context: str | None = None  # kubeconfig context; None: its current context
    poll_s: float = 10.0  # how often the Job's state is read
    timeout_s: float | None = None  # give up following after this long; None: follow until the Job ends

    def __post_init__(self) -> None:
        require_setting(self.nodes >= 1, "train.kubernetes.nodes", "a positive integer")
        require_setting(self.gpus_per_node >= 1, "train.kubernetes.gpus_per_node", "a positive integer")
        require_setting(self.poll_s > 0, "train.kubernetes.poll_s", "a positive number of seconds")
        timeout = self.timeout_s
        require_setting(timeout is None or timeout > 0, "train.kubernetes.timeout_s", "a positive number or none")


@dataclass(frozen=True)
class TrainSettings:
    """Where ``swerl_core.train.run`` runs a training stage: a local child process resumed after a crash (``local``),
    a Job on a Kubernetes cluster (``kubernetes``), or the calling process itself (``in_process``: what ``swerl
    train``, the child process and the pods are)."""

    launcher: Literal["local", "kubernetes", "in_process"] = "local"
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)


def is_http_url(text: str) -> bool:
    """Whether ``text`` is an ``http(s)://HOST[:PORT][/PATH]`` URL without query or fragment."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
