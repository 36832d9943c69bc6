"""The one :class:`Settings` object: every section composed, plus the places under ``SWERL_HOME`` derived from it.

Stages receive the section they need (``settings.github``, ``settings.ingest``…) as an argument. Build it
with :func:`swerl_core.config.load_settings`; this module never reads the environment or a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swerl_core.config.checks import require
from swerl_core.config.curate import CurateConfig
from swerl_core.config.evaluate import EvaluateConfig
from swerl_core.config.execution import ExecutionConfig
from swerl_core.config.registry import RegistryConfig
from swerl_core.config.sections import GitHubConfig, IngestConfig, RewardConfig, StoreConfig, TrainSettings
from swerl_core.config.storage import StorageConfig


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
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def __post_init__(self) -> None:
        home = self.home
        require(not home.exists() or home.is_dir(), "home", f"a directory, but {home} is not one")

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
    def environments_dir(self) -> Path:
        """Built execution environments, one folder per repository and declaration digest."""
        return self.home / "environments"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the explicit setting, else a sqlite registry under ``home``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"
