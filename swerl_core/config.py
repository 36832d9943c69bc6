"""One typed settings object for every stage: defaults < YAML file < ``SWERL_*`` environment.

Stages receive the section they need (``settings.github``, ``settings.ingest``…) as an argument;
nothing below this module reads the environment. Secrets are never settings: the GitHub token is
read at the edge (:func:`github_token`) and wrapped in :class:`Secret` so it cannot be printed.

Environment variables: ``SWERL_HOME`` and ``SWERL_GITHUB_API_URL`` (documented in DESIGN.md), and
generally ``SWERL_<SECTION>__<KEY>`` (double underscore) for any field, e.g.
``SWERL_GITHUB__MAX_RETRIES=8`` or ``SWERL_STORAGE__URI=s3://bucket/prefix``. ``MLFLOW_TRACKING_URI`` overrides
the MLflow default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from swerl_core.curate.config import CurateConfig
from swerl_core.errors import ConfigError, require_setting
from swerl_core.evaluate.config import EvaluateConfig
from swerl_core.registry.config import RegistryConfig
from swerl_core.repo_names import PUBLIC_GITHUB_API, is_repository_name

ENV_PREFIX = "SWERL_"


class Secret:
    """A string that never shows itself in ``repr``/``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value; call only where it is handed to the service that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


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
        require_setting(_is_http_url(url), "github.api_url", f"an http(s)://HOST[/PATH] URL, got {url!r}")
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
class StorageConfig:
    """Shared storage for snapshots and checkpoints: an S3-compatible bucket (empty ``uri``: local only).

    Credentials are never settings: boto3 reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or a role).
    """

    uri: str = ""  # s3://BUCKET[/PREFIX]
    endpoint_url: str = ""  # an S3-compatible server (MinIO, Ceph RGW, R2…); empty: AWS (or AWS_ENDPOINT_URL_S3)
    timeout_s: float = 60.0  # connect and read timeout of one request
    max_attempts: int = 5  # tries per request (boto3's standard retry mode)

    def __post_init__(self) -> None:
        from swerl_core.storage import shown_uri, storage_uri_problem

        problem = storage_uri_problem(self.uri) if self.uri else None
        require_setting(
            problem is None, "storage.uri", f"s3://BUCKET[/PREFIX], got {shown_uri(self.uri)!r} ({problem})"
        )
        url = self.endpoint_url
        require_setting(
            not url or (_is_http_url(url) and "@" not in urlsplit(url).netloc),
            "storage.endpoint_url",
            f"an http(s)://HOST[:PORT] URL without credentials, got {shown_uri(url)!r}",
        )
        require_setting(self.timeout_s > 0, "storage.timeout_s", "a positive number of seconds")
        require_setting(self.max_attempts >= 1, "storage.max_attempts", "a positive integer")


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
    """How the train flow runs a training stage: a local child process, or a Job on a Kubernetes cluster."""

    launcher: Literal["local", "kubernetes"] = "local"
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)


@dataclass(frozen=True)
class Settings:
    """Every setting of swerl. Build it with :func:`load_settings`."""

    home: Path = Path("data")
    mlflow_tracking_uri: str = ""
    github: GitHubConfig = field(default_factory=GitHubConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    train: TrainSettings = field(default_factory=TrainSettings)

    def __post_init__(self) -> None:
        home = self.home
        require_setting(not home.exists() or home.is_dir(), "home", f"a directory, but {home} is not one")

    @property
    def db_path(self) -> Path:
        """The DuckDB database holding raw PRs, issues, blobs, runs and snapshots."""
        return self.home / "swerl.duckdb"

    @property
    def mirrors_dir(self) -> Path:
        """Bare git mirrors, one per repository."""
        return self.home / "mirrors"

    @property
    def snapshots_dir(self) -> Path:
        """Curated dataset snapshots (Parquet + manifest)."""
        return self.home / "snapshots"

    @property
    def checkpoints_dir(self) -> Path:
        """Training checkpoints (HF safetensors directories)."""
        return self.home / "checkpoints"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the explicit setting, else a sqlite registry under ``home``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def load_settings(
    config_file: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults, then ``config_file`` (YAML), then ``env``, then ``overrides``.

    ``overrides`` uses dotted keys (``{"github.api_url": …}``) and is how CLI flags land. Raises
    :class:`ConfigError` naming the offending key and what it accepts.
    """
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    if config_file is not None:
        tree = read_yaml_mapping(Path(config_file))
    for key, value in _env_entries(env).items():
        _set_dotted(tree, key, value)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, key, value)
    return build_section(Settings, tree, prefix="")


def github_token(env: Mapping[str, str] | None = None) -> Secret | None:
    """The GitHub token from ``GITHUB_TOKEN`` (or ``GH_TOKEN``), wrapped so it never prints."""
    env = os.environ if env is None else env
    # A token read from a file (a Kubernetes Secret, `$(cat token)`) often ends in a newline: never part of it.
    value = (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "").strip()
    if any(c.isspace() for c in value):
        raise ConfigError("GITHUB_TOKEN holds whitespace inside it: not a GitHub token")
    return Secret(value) if value else None


def as_dict(settings: Any) -> dict[str, Any]:
    """A plain, JSON/YAML-friendly dict of a settings dataclass (for manifests and MLflow params)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = as_dict(value)
        elif isinstance(value, Path):
            out[f.name] = str(value)
        elif isinstance(value, datetime):
            out[f.name] = value.isoformat()
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds (``{}`` when empty); :class:`ConfigError` naming ``what`` otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start} is not valid)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {_one_line(exc)}") from None
    except (ValueError, OverflowError) as exc:  # YAML's own date parsing: "2025-02-30" looks like a date
        raise ConfigError(f"{what} {path} holds an invalid value: {_one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _env_entries(env: Mapping[str, str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    aliases = {"SWERL_HOME": "home", "SWERL_GITHUB_API_URL": "github.api_url"}
    for name, value in env.items():
        if name in aliases:
            entries[aliases[name]] = value
        elif name.startswith(ENV_PREFIX) and "__" in name:
            entries[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = value
    if "mlflow_tracking_uri" not in entries and env.get("MLFLOW_TRACKING_URI"):
        entries["mlflow_tracking_uri"] = env["MLFLOW_TRACKING_URI"]
    return entries


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if not rest:
        tree[head] = value
        return
    node = tree.setdefault(head, {})
    if not isinstance(node, dict):
        raise ConfigError(f"invalid setting {head}: expected a section, got a value")
    _set_dotted(node, rest, value)


def build_section(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """A frozen settings dataclass ``cls`` from plain data, coercing strings; errors name ``prefix`` + key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"invalid setting {prefix.rstrip('.')}: expected a section (mapping)")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"unknown setting {prefix}{unknown[0]} ({where}); allowed: {', '.join(sorted(known))}")
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build_section(hint, value, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        is_null = value is None or (isinstance(value, str) and value.lower() in ("", "none", "null"))
        if is_null and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"invalid setting {key}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], item.strip() if isinstance(item, str) else item, key) for item in items)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"invalid setting {key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError
            return float(value)
        if hint is Path:
            if not isinstance(value, str | os.PathLike) or not str(value).strip() or "\x00" in str(value):
                raise ValueError
            return Path(value).expanduser()
        if hint is datetime:
            return parse_utc_datetime(value)
        if hint is str:
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        expected = "a finite number" if hint is float else getattr(hint, "__name__", hint)
        raise ConfigError(f"invalid setting {key}: expected {expected}, got {str(value)[:80]!r}") from None
    return value


def parse_utc_datetime(value: Any) -> datetime:
    """An ISO-8601 date or time (or a datetime) as an aware datetime; no zone means UTC. Raises ValueError."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)  # in range in UTC too, so later comparisons and formatting cannot overflow
    except OverflowError:
        raise ValueError(f"{value!s} is out of range") from None
