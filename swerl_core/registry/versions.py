"""Model versions: a consolidated HF checkpoint directory logged as run artifacts, registered with provenance.

A version's files are the checkpoint directory (``config.json``, safetensors, tokenizer) logged under
the run's ``model/`` artifact path; ``create_model_version`` points at that artifact URI (MLflow 3's
``register_model("runs:/…")`` does not accept plain artifacts). Tags record the snapshot, base model,
training run, git SHA, config hash and evaluation metrics. ``models:/NAME@ALIAS`` and
``models:/NAME/VERSION`` resolve back to a local directory that ``transformers`` loads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.registry import RegistryError

EVALUATE_EXPERIMENT = "swerl-evaluate"
REGISTRY_EXPERIMENT = "swerl-registry"
ARTIFACT_PATH = "model"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class Provenance:
    """Where a checkpoint came from (each a tag of its model version)."""

    snapshot_id: str
    base_model: str
    training_run_id: str
    git_sha: str
    config_hash: str

    def tags(self) -> dict[str, str]:
        """The provenance as model-version tags."""
        return {k: v or "unknown" for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference made concrete: a local directory plus, for registry URIs, its name and version."""

    ref: str
    local_dir: Path
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


def mlflow_client(tracking_uri: str) -> Any:
    """An :class:`mlflow.MlflowClient` bound to ``tracking_uri`` for tracking and the registry."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(client: Any, name: str, artifact_root: Path) -> str:
    """The id of experiment ``name``, created on first use (artifacts under ``artifact_root`` for local stores)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # A local store would otherwise put artifacts in ./mlruns under the current directory.
    local = client.tracking_uri.startswith(("sqlite:", "file:"))
    location = Path(artifact_root).resolve().as_uri() if local else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # another process created it first
        return str(client.get_experiment_by_name(name).experiment_id)


def parse_model_uri(ref: str) -> tuple[str, str | None, str | None] | None:
    """``(name, alias, version)`` of a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI; else ``None``."""
    match = _MODEL_URI.match(ref)
    return (match["name"], match["alias"], match["version"]) if match else None


def resolve_model(client: Any, ref: str, cache_dir: Path) -> ResolvedModel:
    """A local directory for ``ref``: a checkpoint path as is, a registry URI downloaded into ``cache_dir``."""
    parsed = parse_model_uri(ref)
    if parsed is None:
        if ref.startswith("models:/"):
            raise RegistryError(f"bad model URI {ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        path = Path(ref).expanduser()
        if not (path / "config.json").exists():
            raise RegistryError(f"{path} is not a model directory (no config.json)")
        return ResolvedModel(str(path.resolve()), path.resolve())
    from mlflow.exceptions import MlflowException

    name, alias, version = parsed
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{ref} does not exist in the registry") from None
    target = Path(cache_dir) / name / str(mv.version)
    if not (target / ARTIFACT_PATH / "config.json").exists():
        from mlflow.artifacts import download_artifacts

        target.mkdir(parents=True, exist_ok=True)
        download_artifacts(artifact_uri=mv.source, dst_path=str(target), tracking_uri=client.tracking_uri)
    return ResolvedModel(f"models:/{name}/{mv.version}", target / ARTIFACT_PATH, name, str(mv.version), mv.run_id)


def training_provenance(client: Any, checkpoint: Path, snapshot_id: str, git_sha: str) -> Provenance:
    """Provenance of ``checkpoint``: from its training run (``../mlflow_run_id``) when there is one."""
    from swerl_core.train.checkpoints import read_run_id

    run_id = read_run_id(Path(checkpoint).parent) or ""
    params: Mapping[str, str] = {}
    if run_id:
        try:
            params = client.get_run(run_id).data.params
        except Exception:  # noqa: BLE001 - a run id from another tracking server: keep the id, lose the params
            params = {}
    config = Path(checkpoint) / "config.json"
    base_model = params.get("base_model") or _name_or_path(config)
    hashed = {k: v for k, v in params.items() if k != "run_name"} or {"config.json": config.read_text("utf-8")}
    config_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    return Provenance(snapshot_id, base_model, run_id, params.get("git_sha") or git_sha, config_hash)


def _name_or_path(config: Path) -> str:
    try:
        return str(json.loads(config.read_text("utf-8")).get("_name_or_path") or "")
    except (OSError, json.JSONDecodeError):
        return ""


def create_version(
    client: Any, name: str, checkpoint: Path, run_id: str, tags: Mapping[str, str]
) -> tuple[str, str]:
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


def version_metrics(client: Any, name: str, version: str) -> dict[str, str]:
    """The ``eval.*`` tags of a version (metrics of the evaluation it was registered with)."""
    tags = client.get_model_version(name, version).tags
    return {k[len("eval."):]: v for k, v in tags.items() if k.startswith("eval.")}
