"""What every swerl flow shares: settings, the recipe, the library's logs in the run log, the GitHub token, MLflow
URLs, and the record of the effective settings and recipe.

Settings reach a flow exactly as they reach the CLI: ``SWERL_HOME``, ``SWERL_<SECTION>__<KEY>``
variables, and a YAML file named by ``SWERL_CONFIG``. The library logs under ``swerl.*``; inside a
flow those records go to the Prefect run log of the run that is executing (no line is lost to a
terminal nobody reads). The GitHub token comes from the Prefect Secret block ``github-token`` when
one exists, else from ``GITHUB_TOKEN``; it is handed to the library wrapped and never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from swerl_core.config import Secret, Settings, github_token, load_settings, shown_settings
from swerl_core.train.config import TrainConfig, load_train_config, train_config_dict, train_config_from_dict

SECRET_BLOCK = "github-token"
_active: list[Any] = []


def flow_settings() -> Settings:
    """The swerl settings of this process: the environment over the YAML file ``SWERL_CONFIG`` names.

    Without ``SWERL_CONFIG``, ``$SWERL_HOME/swerl.yaml`` is read when it exists, so that settings written
    next to the data (as ``make demo`` does) reach flows started by an already running worker.
    """
    named = os.environ.get("SWERL_CONFIG")
    if named:
        return load_settings(named)
    beside = Path(os.environ.get("SWERL_HOME") or "data") / "swerl.yaml"
    return load_settings(beside if beside.is_file() else None)


def recipe_config(recipe: str | TrainConfig | dict[str, Any]) -> TrainConfig:
    """The recipe a flow was given: read from a file path, validated from a mapping (a parent's recipe as the API
    recorded it), or as it is."""
    if isinstance(recipe, TrainConfig):
        return recipe
    return train_config_from_dict(recipe) if isinstance(recipe, dict) else load_train_config(recipe)


def recipe_name(recipe: str | TrainConfig | dict[str, Any]) -> str:
    """A recipe's name for a flow run's name, without reading a file: a path gives its file name's stem."""
    if isinstance(recipe, TrainConfig):
        return recipe.name
    return str(recipe.get("name", "recipe")) if isinstance(recipe, dict) else Path(recipe).stem


def record_configuration(settings: Settings, recipe: TrainConfig) -> None:
    """Publish the effective settings (credentials in URLs dropped; secrets are never settings) and recipe of this
    flow run as one markdown artifact, ``effective-configuration``."""
    from prefect.artifacts import create_markdown_artifact

    text = (
        f"### Effective configuration\n\nRecipe `{recipe.name}`:\n\n```yaml\n"
        f"{yaml.safe_dump(train_config_dict(recipe), sort_keys=False)}```\n\n"
        f"Settings:\n\n```yaml\n{yaml.safe_dump(shown_settings(settings), sort_keys=False)}```"
    )
    description = f"the settings and recipe {recipe.name} this run trained with"
    create_markdown_artifact(text, key="effective-configuration", description=description)


class _RunLog(logging.Handler):
    """Sends ``swerl.*`` records to the current Prefect run's log (or the innermost flow's, from worker threads)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            target = get_run_logger()
        except MissingContextError:
            if not _active:
                return
            target = _active[-1]
        target.log(record.levelno, "%s", self.format(record))


_HANDLER = _RunLog()
_HANDLER.setFormatter(logging.Formatter("%(name)s: %(message)s"))


@contextmanager
def swerl_logs() -> Iterator[None]:
    """Within this block, the library's ``swerl.*`` log records (INFO and up) reach the flow run's log."""
    library = logging.getLogger("swerl")
    _active.append(get_run_logger())
    if _HANDLER not in library.handlers:
        library.addHandler(_HANDLER)
    if library.level in (logging.NOTSET,) or library.level > logging.INFO:
        library.setLevel(logging.INFO)
    try:
        yield
    finally:
        _active.pop()
        if not _active:
            library.removeHandler(_HANDLER)


def github_secret() -> Secret | None:
    """The GitHub token: the Prefect Secret block ``github-token`` when present, else ``GITHUB_TOKEN``."""
    from prefect.blocks.system import Secret as SecretBlock

    try:
        block = SecretBlock.load(SECRET_BLOCK)
    except ValueError:  # no such block on this server
        return github_token()
    value = block.get()
    return Secret(str(value).strip()) if value else github_token()


def mlflow_ui(settings: Settings) -> str | None:
    """The MLflow web UI's base URL when tracking goes through an MLflow server, else ``None``."""
    uri = settings.tracking_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def mlflow_run_url(settings: Settings, run_id: str) -> str:
    """A link to an MLflow run: its page in the MLflow UI, or a ``runs:/`` URI without a server."""
    base = mlflow_ui(settings)
    if base is None:
        return f"runs:/{run_id}"
    from mlflow import MlflowClient

    experiment = MlflowClient(settings.tracking_uri).get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment}/runs/{run_id}"


def mlflow_artifact_url(settings: Settings, run_id: str, path: str) -> str | None:
    """An HTTP URL serving one artifact of an MLflow run (for image artifacts), when there is a server."""
    base = mlflow_ui(settings)
    return None if base is None else f"{base}/get-artifact?path={path}&run_uuid={run_id}"


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from free text: lowercase letters, digits and dashes only."""
    text = "".join(c if c.isascii() and c.isalnum() else "-" for c in "-".join(parts).lower())
    return "-".join(p for p in text.split("-") if p)[:120].strip("-") or "swerl"
