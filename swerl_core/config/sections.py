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

from swerl_core.config.checks import DAY_S, MONTH_S, require, require_integer, require_number
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
        require(is_http_url(url), "github.api_url", f"an http(s)://HOST[/PATH] URL, got {url!r}")
        require_integer("github.per_page", self.per_page, 1, 100)
        require_number("github.timeout_s", self.timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        require_integer("github.max_retries", self.max_retries, 0, 100)
        require_number("github.max_rate_limit_wait_s", self.max_rate_limit_wait_s, 0, DAY_S, unit="seconds")
        require_number("github.backoff_s", self.backoff_s, 0, DAY_S, unit="seconds")
        require_number("github.max_backoff_s", self.max_backoff_s, 0, DAY_S, unit="seconds")
        require_number("github.secondary_rate_wait_s", self.secondary_rate_wait_s, 0, DAY_S, unit="seconds")
        # GitHub's own throttle advice is under a second; a minute between requests already means days per repository.
        require_number("github.seconds_between_requests", self.seconds_between_requests, 0, 60, unit="seconds")
        require_integer("github.graphql_batch_size", self.graphql_batch_size, 1, 100)


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
            require(is_repository_name(repo), "ingest.repos", f"entries like OWNER/NAME, got {repo!r}")
        require_integer("ingest.batch_size", self.batch_size, 1, 100_000)
        require_integer("ingest.git_workers", self.git_workers, 1, 256)
        require_integer("ingest.max_blob_bytes", self.max_blob_bytes, 0, 1_000_000_000)


@dataclass(frozen=True)
class RewardConfig:
    """How rewards are computed in batch (values never depend on these)."""

    workers: int = 0  # 0 = every core

    def __post_init__(self) -> None:
        require_integer("reward.workers", self.workers, 0, 1024, note="0: every core")


@dataclass(frozen=True)
class StoreConfig:
    """How stages share the DuckDB store: how long a writer waits for the writer lock (and readers for a write)."""

    lock_timeout_s: float = 60.0  # wait this long for another process's write to finish, then fail naming it

    def __post_init__(self) -> None:
        require_number("store.lock_timeout_s", self.lock_timeout_s, 0, DAY_S, unit="seconds")


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
        require_integer("train.kubernetes.nodes", self.nodes, 1, 10_000)
        require_integer("train.kubernetes.gpus_per_node", self.gpus_per_node, 1, 64)
        require_number("train.kubernetes.poll_s", self.poll_s, 0, 3600, open_low=True, unit="seconds")
        if self.timeout_s is not None:
            timeout = self.timeout_s
            require_number(
                "train.kubernetes.timeout_s", timeout, 0, MONTH_S, open_low=True, unit="seconds", note="or none"
            )


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
