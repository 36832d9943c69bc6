"""Model versions: a consolidated HF checkpoint directory logged as run artifacts, registered with provenance.

A version's files are the checkpoint directory (``config.json``, safetensors, tokenizer) logged under
the run's ``model/`` artifact path; ``create_model_version`` points at that artifact URI (MLflow 3's
``register_model("runs:/…")`` does not accept plain artifacts). Tags record the snapshot, base model,
training run, git SHA, config hash and evaluation metrics. ``models:/NAME@ALIAS`` and
``models:/NAME/VERSION`` resolve back to a local directory that ``transformers`` loads; a download
lands in a temporary sibling and is renamed into the cache only when complete, so a killed download
or two evaluations at once never leave a partial model that later runs trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from swerl_core.registry import RegistryError

EVALUATE_EXPERIMENT = "swerl-evaluate"
REGISTRY_EXPERIMENT = "swerl-registry"
ARTIFACT_PATH = "model"
COMPLETE_MARKER = ".swerl-download-complete"  # written last into a cached version directory
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


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

    # MLflow announces creating and upgrading its sqlite tables at INFO on stderr; our lines say what matters.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    with registry_access(tracking_uri):
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def registry_access(tracking_uri: str) -> Iterator[None]:
    """Turn a registry that cannot be reached or read into one :class:`RegistryError` line.

    "Not found" answers (``RESOURCE_DOES_NOT_EXIST``) pass through for the caller to word; anything
    else (a refused connection, an unknown URI scheme, a corrupt ``mlflow.db``) is reported as the
    registry being unreachable or broken, never as a missing model or version.
    """
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RegistryError:
        raise
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise
        raise RegistryError(_unreachable(tracking_uri, exc)) from None
    except Exception as exc:  # sqlalchemy, requests and sqlite errors of a broken or unreachable store
        if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "requests", "urllib3", "sqlite3", "mlflow"):
            raise
        raise RegistryError(_unreachable(tracking_uri, exc)) from None


def _unreachable(tracking_uri: str, exc: BaseException) -> str:
    parts = urlsplit(tracking_uri)
    shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password or parts.username else tracking_uri
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"the MLflow registry at {shown} is unreachable or unreadable ({type(exc).__name__}: {detail})"


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
    if not _download_complete(target):
        _download_version(client, mv.source, target)
    return ResolvedModel(f"models:/{name}/{mv.version}", target / ARTIFACT_PATH, name, str(mv.version), mv.run_id)


def _download_complete(target: Path) -> bool:
    return (target / COMPLETE_MARKER).exists() and (target / ARTIFACT_PATH / "config.json").exists()


def _download_version(client: Any, source: str, target: Path) -> None:
    """Download ``source`` into a temporary sibling of ``target``, mark it complete, then rename it into place."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        try:
            download_artifacts(artifact_uri=source, dst_path=str(partial), tracking_uri=client.tracking_uri)
        except MlflowException as exc:
            raise RegistryError(f"cannot download {source}: {str(exc).splitlines()[0]}") from None
        (partial / COMPLETE_MARKER).write_text(source + "\n", encoding="utf-8")
        _move_into_place(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _move_into_place(partial: Path, target: Path) -> None:
    from filelock import FileLock

    # The lock covers only check-and-rename: a complete copy is never replaced, so readers need no lock.
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if _download_complete(target):  # another evaluation finished the same download first: keep its copy
            return
        if target.exists():
            _discard(target)  # an interrupted download (or one by an older swerl, written in place): never trusted
        os.rename(partial, target)


def _discard(path: Path) -> None:
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def training_provenance(client: Any, checkpoint: Path, snapshot_id: str, git_sha: str) -> Provenance:
    """Provenance of ``checkpoint``: from its training run (``../mlflow_run_id``) when this server knows it.

    A run id this tracking server does not know (training logged elsewhere) is kept as the tag
    ``training.run_id_unresolved`` and the version is registered under a new registry run; any other
    MLflow failure is a :class:`RegistryError`.
    """
    from swerl_core.train.checkpoints import read_run_id

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
    """The params of run ``run_id``, or ``None`` when this tracking server has no such run."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_run(run_id).data.params)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
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


def version_metrics(client: Any, name: str, version: str) -> dict[str, str]:
    """The ``eval.*`` tags of a version (metrics of the evaluation it was registered with)."""
    tags = client.get_model_version(name, version).tags
    return {k[len("eval.") :]: v for k, v in tags.items() if k.startswith("eval.")}
