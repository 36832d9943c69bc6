"""Model versions: a consolidated HF checkpoint directory logged as run artifacts, registered with provenance.

A version's files are the checkpoint directory (``config.json``, safetensors, tokenizer) logged under
the run's ``model/`` artifact path; ``create_model_version`` points at that artifact URI (MLflow 3's
``register_model("runs:/…")`` does not accept plain artifacts). Tags record the snapshot, base model,
training run, git SHA, config hash and evaluation metrics. Resolving ``models:/NAME@ALIAS`` and
``models:/NAME/VERSION`` back to a local directory is :mod:`swerl_core.models` (evaluation reads
through it too); its names are importable from here for registry callers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.lineage import run_params
from swerl_core.models import (  # noqa: F401  (the model-reference reader; re-exported for registry callers)
    ARTIFACT_PATH,
    COMPLETE_MARKER,
    ResolvedModel,
    experiment_id,
    mlflow_client,
    parse_model_uri,
    registry_access,
    resolve_model,
    version_metrics,
)
from swerl_core.registry import RegistryError
from swerl_core.runs import read_run_id

REGISTRY_EXPERIMENT = "swerl-registry"


@dataclass(frozen=True)
class Provenance:
    """Where a checkpoint came from (each a tag of its model version)."""

    snapshot_id: str
    base_model: str
    training_run_id: str
    git_sha: str
    config_hash: str
    unresolved_run_id: str = ""  # a recorded training run id this tracking server does not know

    def tags(self) -> dict[str, str]:
        """The provenance as model-version tags."""
        tags = {
            "snapshot_id": self.snapshot_id,
            "base_model": self.base_model,
            "training_run_id": self.training_run_id,
            "git_sha": self.git_sha,
            "config_hash": self.config_hash,
        }
        tags = {k: v or "unknown" for k, v in tags.items()}
        if self.unresolved_run_id:
            tags["training.run_id_unresolved"] = self.unresolved_run_id
        return tags


def training_provenance(client: Any, checkpoint: Path, snapshot_id: str, git_sha: str) -> Provenance:
    """Provenance of ``checkpoint``: from its training run (``../mlflow_run_id``) when this server knows it.

    A run id this tracking server does not know (training logged elsewhere) is kept as the tag
    ``training.run_id_unresolved`` and the version is registered under a new registry run; any other
    MLflow failure is a :class:`RegistryError`.
    """
    recorded = read_run_id(Path(checkpoint).parent) or ""
    params = _run_params(client, recorded) if recorded else None
    run_id, unresolved = (recorded, "") if params is not None else ("", recorded)
    params = params or {}
    config = Path(checkpoint) / "config.json"
    base_model = params.get("base_model") or _name_or_path(config)
    hashed = {k: v for k, v in params.items() if k != "run_name"} or {"config.json": config.read_text("utf-8")}
    config_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    return Provenance(snapshot_id, base_model, run_id, params.get("git_sha") or git_sha, config_hash, unresolved)


def _run_params(client: Any, run_id: str) -> Mapping[str, str] | None:
    """:func:`~swerl_core.lineage.run_params`, with any other MLflow error as a :class:`RegistryError`."""
    from mlflow.exceptions import MlflowException

    try:
        return run_params(client, run_id)
    except MlflowException as exc:
        raise RegistryError(
            f"cannot read training run {run_id} from {client.tracking_uri}: {str(exc).splitlines()[0]}"
        ) from None


def _name_or_path(config: Path) -> str:
    try:
        return str(json.loads(config.read_text("utf-8")).get("_name_or_path") or "")
    except (OSError, json.JSONDecodeError):
        return ""


def create_version(client: Any, name: str, checkpoint: Path, run_id: str, tags: Mapping[str, str]) -> tuple[str, str]:
    """Log ``checkpoint`` as the run's ``model/`` artifacts and register it; returns ``(version, source)``."""
    from mlflow.exceptions import MlflowException

    if not (Path(checkpoint) / "config.json").exists():
        raise RegistryError(f"{checkpoint} is not a consolidated HF checkpoint (no config.json)")
    client.log_artifacts(run_id, str(checkpoint), ARTIFACT_PATH)
    source = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=dict(tags))
    return str(mv.version), source


def model_versions(client: Any, name: str) -> list[Any]:
    """Every version of registered model ``name`` (MLflow ``ModelVersion`` objects, in MLflow's order)."""
    # MLflow's filter grammar has no escape inside a quoted string: quote with the kind of quote the name lacks
    # (registry.model_name never holds both).
    quote = '"' if "'" in name else "'"
    return list(client.search_model_versions(f"name = {quote}{name}{quote}"))


MODEL_DESCRIPTION = (
    "The SWE-RL repair policy swerl keeps training on freshly merged GitHub pull requests. Each version is a "
    "checkpoint evaluated on held-out pull requests and judged by the registry gate against the champion "
    "(its tags hold the evaluation, the verdict and the provenance); serve models:/{name}@champion."
)


def describe_version(client: Any, name: str, version: str, checkpoint: Path, snapshot_id: str, judged: str) -> None:
    """Descriptions for the MLflow UI: the registered model's (once) and the version's, ending with ``judged``
    (the gate's verdict in words)."""
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTION.format(name=name))
    text = (
        f"Checkpoint {Path(checkpoint).name} of training run {Path(checkpoint).parent.name}, evaluated on the "
        f"held-out split of snapshot {snapshot_id}: {judged}."
    )
    client.update_model_version(name, version, description=text)
