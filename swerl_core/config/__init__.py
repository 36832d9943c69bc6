"""One typed settings object for every stage: defaults < YAML file < ``SWERL_*`` environment.

Stages receive the section they need (``settings.github``, ``settings.ingest``…) as an argument;
nothing below this package reads the environment. Secrets are never settings: the GitHub token is
read at the edge (:func:`github_token`) and wrapped in :class:`Secret` so it cannot be printed.

The package holds the sections (:mod:`.sections` for the library's own parts; :mod:`.curate`,
:mod:`.evaluate` and :mod:`.registry` for those stages; :mod:`.execution` for running repositories' code;
:mod:`.storage` for shared storage and its ``s3://`` URI grammar), the checks they share and how a setting is
named in a message (:mod:`.checks`), their composition (:mod:`.settings`) and the loading (:mod:`.loading`, also
the one YAML reader). It is a shared module: it never imports a stage.
"""

from swerl_core.config.checks import ENV_PREFIX, env_var
from swerl_core.config.curate import CurateConfig
from swerl_core.config.evaluate import EvaluateConfig
from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.config.loading import (
    DuplicateKeyError,
    as_dict,
    build_section,
    load_settings,
    parse_utc_datetime,
    parse_yaml,
    read_yaml_mapping,
    shown_settings,
)
from swerl_core.config.registry import RegistryConfig
from swerl_core.config.secrets import Secret, github_token
from swerl_core.config.sections import (
    GitHubConfig,
    IngestConfig,
    KubernetesConfig,
    RewardConfig,
    StoreConfig,
    TrainSettings,
)
from swerl_core.config.settings import Settings
from swerl_core.config.storage import StorageConfig
from swerl_core.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "CurateConfig",
    "DuplicateKeyError",
    "EvaluateConfig",
    "ExecutionConfig",
    "GitHubConfig",
    "IngestConfig",
    "KubernetesConfig",
    "RegistryConfig",
    "RepoEnvironment",
    "RewardConfig",
    "Secret",
    "Settings",
    "StorageConfig",
    "StoreConfig",
    "TrainSettings",
    "as_dict",
    "build_section",
    "env_var",
    "github_token",
    "load_settings",
    "parse_utc_datetime",
    "parse_yaml",
    "read_yaml_mapping",
    "shown_settings",
]
