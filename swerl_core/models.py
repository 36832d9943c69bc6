"""One rule for naming a model and resolving it, whichever verb or flow takes it; and what is read from the registry.

A model is named by

- a registry URI, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``;
- a checkpoint on shared storage, ``s3://BUCKET/…/checkpoints/<run>/final`` (see :mod:`swerl_core.bucket`);
- a directory: absolute, or relative to the working directory, or relative to ``SWERL_HOME`` — the first that
  exists wins, so ``data/checkpoints/<run>/final`` (from the repository root) and ``checkpoints/<run>/final``
  (relative to the home) both work;
- for a base model only, a Hugging Face hub id (``meta-llama/Llama-3.1-8B-Instruct``) when no such directory exists.

:func:`resolve_model_reference` turns the text a user typed into a reference (it loads and downloads
nothing); :func:`resolve_model` turns a reference into a local directory ``transformers`` loads. A registered
version's files are downloaded into a temporary sibling and renamed into the cache only when complete, so a
killed download or two evaluations at once never leave a partial model that later runs trust (the rename holds a
lock in ``locks/`` beside the cache: ``$SWERL_HOME/locks`` for ``$SWERL_HOME/models``). Evaluation and
the registry both read through here (which alias points where, a version's ``eval.*`` tags), so
:mod:`swerl_core.evaluate` never imports :mod:`swerl_core.registry`; creating versions and moving aliases
stay in the registry.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from swerl_core.bucket import discard_dir, fetch_checkpoint
from swerl_core.config.storage import StorageConfig, is_storage_uri, parse_location
from swerl_core.errors import AccessDenied, ModelError, StorageError, SwerlError
from swerl_core.locks import LockFolder
from swerl_core.runs import read_run_id, write_run_id

ARTIFACT_PATH = "model"  # a version's files: the run's model/ artifacts
COMPLETE_MARKER = ".swerl-download-complete"  # written last into a cached version directory
CHAMPION, CHALLENGER = "champion", "challenger"
_RENAME_WAIT_S = 300.0  # another process holds the download lock only to check and rename a finished copy
log = logging.getLogger("swerl.models")
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference made concrete: a local directory plus, for registry URIs, its name and version."""

    ref: str
    local_dir: Path
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


def mlflow_client(tracking_uri: str) -> Any:
    """An :class:`mlflow.MlflowClient` bound to ``tracking_uri`` for tracking and the registry; a tracking server
    that does not answer is a :class:`ModelError` within :data:`REACH_WINDOW_S` (see :func:`wait_for_server`)."""

    # MLflow announces creating and upgrading its sqlite tables at INFO on stderr, and draws a progress bar for every
    # artifact upload and download (a checkpoint registered, a version fetched): our lines say what matters. A user
    # who wants the bars sets MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR themselves.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    wait_for_server(tracking_uri)
    with registry_access(tracking_uri):
        return _client_class()(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@functools.cache
def _client_class() -> Any:
    """MLflow's client, asking whether a registered model is really a prompt once per name and client instead of
    before each of its calls: 38 of the 107 requests one registration made (``benchmarks/registry.py``). A name the
    client deletes or renames is asked about again."""
    from mlflow import MlflowClient

    class Client(MlflowClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._models_not_prompts: set[str] = set()

        def _raise_if_prompt(self, name: str) -> None:
            if name not in self._models_not_prompts:
                super()._raise_if_prompt(name)  # raises for a prompt, or a model that does not exist (not kept)
                self._models_not_prompts.add(name)

        def delete_registered_model(self, name: str) -> None:
            self._models_not_prompts.discard(name)
            super().delete_registered_model(name)

        def rename_registered_model(self, name: str, new_name: str) -> Any:
            self._models_not_prompts.difference_update((name, new_name))
            return super().rename_registered_model(name, new_name)

    return Client


REACH_WINDOW_S = 15.0  # the longest an unanswering tracking server is tried before "cannot reach"
_ANSWERED: dict[str, float] = {}  # tracking URI → when it last answered (monotonic seconds)


def wait_for_server(tracking_uri: str) -> None:
    """Return once the tracking server at an http(s) ``tracking_uri`` answers; raise :class:`ModelError` ("cannot
    reach MLflow at URL") when it has not within :data:`REACH_WINDOW_S`, warning before each retry.

    MLflow's own client retries a dead server for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7, with
    doubling waits) and says nothing meanwhile; this asks ``/health`` first, at most that many times too (so 0 asks
    once). A server that answered in the last minute is not asked again.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    started = time.monotonic()
    if started - _ANSWERED.get(tracking_uri, -math.inf) < 60:
        return
    shown = _shown(tracking_uri)
    probe = shown.rstrip("/") + "/health"
    retries = _int_env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7)
    tls = _tls_context()
    attempt, delay = 0, 1.0
    while True:
        attempt += 1
        try:
            left = REACH_WINDOW_S - (time.monotonic() - started)
            with urllib.request.urlopen(probe, timeout=max(0.5, min(5.0, left)), context=tls):
                break
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # it answered (an auth proxy's 401, a 404 on /health): it is there
                break
            reason = f"HTTP {exc.code} {exc.reason}"  # a proxy answering for a server that is down
        except (OSError, ValueError) as exc:
            reason = " ".join(str(getattr(exc, "reason", exc)).split())[:200] or type(exc).__name__
        elapsed = time.monotonic() - started
        if attempt > retries or elapsed + delay + 1 > REACH_WINDOW_S:  # no time for another try
            raise ModelError(
                f"cannot reach MLflow at {shown} ({reason}; "
                f"{attempt} {'try' if attempt == 1 else 'tries'} in {elapsed:.0f} s): start it, or point "
                "MLFLOW_TRACKING_URI at one that runs"
            ) from None
        log.warning("MLflow at %s does not answer (%s); trying again in %.0f s", shown, reason, delay)
        time.sleep(delay)
        delay *= 2
    _ANSWERED[tracking_uri] = time.monotonic()


def _tls_context() -> ssl.SSLContext | None:
    """The TLS settings MLflow's client takes from the environment, for the probe to ask as it would."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
        return ssl._create_unverified_context()  # the user turned verification off for MLflow
    return ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)


def _int_env(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


@contextmanager
def registry_access(tracking_uri: str, model: str | None = None, needs: str = "READ") -> Iterator[None]:
    """Turn a registry that cannot be reached or read into one :class:`ModelError` line, and a refusal into one
    :class:`AccessDenied` line (:func:`access_refusals`; ``needs`` on ``model`` is the permission the caller lacks).

    "Not found" answers (``RESOURCE_DOES_NOT_EXIST``) pass through for the caller to word; anything
    else (a refused connection, an unknown URI scheme, a corrupt ``mlflow.db``) is reported as the
    registry being unreachable or broken, never as a missing model or version.
    """
    from mlflow.exceptions import MlflowException

    try:
        with access_refusals(tracking_uri, model, needs):
            yield
    except SwerlError:
        raise
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ModelError(_unreachable(tracking_uri, exc)) from None
    except Exception as exc:  # sqlalchemy, requests and sqlite errors of a broken or unreachable store
        if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "requests", "urllib3", "sqlite3", "mlflow"):
            raise
        raise ModelError(_unreachable(tracking_uri, exc)) from None


@contextmanager
def access_refusals(tracking_uri: str, model: str | None = None, needs: str = "READ") -> Iterator[None]:
    """Turn MLflow's 401 and 403 answers into one :class:`AccessDenied` line naming the user (from
    ``MLFLOW_TRACKING_USERNAME``, the only place credentials are read from) and what they lack; a refusal the
    server words itself (``not allowed: …``, :mod:`swerl_core.registry.door`) keeps the server's words."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            raise
        raise AccessDenied(_refusal(tracking_uri, exc, model, needs)) from None


_LOGIN_VARIABLES = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def _refusal(tracking_uri: str, exc: BaseException, model: str | None, needs: str) -> str:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    shown = _shown(tracking_uri)
    text = str(getattr(exc, "message", exc))
    if "not allowed: " in text:
        return text[text.index("not allowed: ") :].splitlines()[0]
    if getattr(exc, "error_code", "") == "UNAUTHENTICATED":
        if not user or not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
            return f"not allowed: MLflow at {shown} needs a login: set {_LOGIN_VARIABLES}"
        return f"not allowed: MLflow at {shown} refused the password of {user} (MLFLOW_TRACKING_PASSWORD)"
    return f"not allowed: {user or 'this user'} lacks {needs} on {model or 'MLflow at ' + shown}"


def _shown(tracking_uri: str) -> str:
    parts = urlsplit(tracking_uri)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # no credentials, the port kept


def _unreachable(tracking_uri: str, exc: BaseException) -> str:
    shown = _shown(tracking_uri)
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


def resolve_model_reference(text: str, home: Path, *, hub_id_allowed: bool = False) -> str:
    """The model ``text`` names: a ``models:/`` or ``s3://`` URI as written, else an absolute directory path
    (or a hub id)."""
    text = text.strip()
    if is_storage_uri(text):
        try:
            parse_location(text)
        except StorageError as exc:
            raise ModelError(str(exc)) from None
        return text
    if text.startswith("models:/"):
        if parse_model_uri(text) is None:
            raise ModelError(f"bad model URI {text!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        return text
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, Path(home) / path]
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    if hub_id_allowed and not path.is_absolute():
        return text
    looked = " or ".join(str(c) for c in candidates)
    raise ModelError(f"no model directory {text!r} (looked for {looked})")


def resolve_model(client: Any, ref: str, cache_dir: Path, storage: StorageConfig | None = None) -> ResolvedModel:
    """A local directory for ``ref``: a checkpoint path as is, a registry URI or an ``s3://`` checkpoint
    downloaded into ``cache_dir`` (the latter verified against its published hashes, through ``storage``'s
    endpoint; ``client`` is unused for it and may be ``None``)."""
    if is_storage_uri(ref):
        return _fetched_checkpoint(ref, cache_dir, storage)
    parsed = parse_model_uri(ref)
    if parsed is None:
        if ref.startswith("models:/"):
            raise ModelError(f"bad model URI {ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        path = Path(ref).expanduser()
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is not a model directory (no config.json)")
        return ResolvedModel(str(path.resolve()), path.resolve())
    from mlflow.exceptions import MlflowException

    name, alias, version = parsed
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        raise ModelError(f"{ref} does not exist in the registry") from None
    target = Path(cache_dir) / name / str(mv.version)
    if not _download_complete(target):
        _download_version(client, mv.source, target, LockFolder.beside(cache_dir))
    return ResolvedModel(f"models:/{name}/{mv.version}", target / ARTIFACT_PATH, name, str(mv.version), mv.run_id)


def _fetched_checkpoint(ref: str, cache_dir: Path, storage: StorageConfig | None) -> ResolvedModel:
    local_dir, run_id = fetch_checkpoint(storage or StorageConfig(), ref, cache_dir)
    if run_id and read_run_id(local_dir.parent) is None:
        write_run_id(local_dir.parent, run_id)  # the run directory's layout: lineage reads ../mlflow_run_id
    return ResolvedModel(ref, local_dir, run_id=run_id)


def _download_complete(target: Path) -> bool:
    return (target / COMPLETE_MARKER).exists() and (target / ARTIFACT_PATH / "config.json").exists()


def _download_version(client: Any, source: str, target: Path, locks: LockFolder) -> None:
    """Download ``source`` into a temporary sibling of ``target``, mark it complete, then rename it into place."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        try:
            download_artifacts(artifact_uri=source, dst_path=str(partial), tracking_uri=client.tracking_uri)
        except MlflowException as exc:
            raise ModelError(f"cannot download {source}: {str(exc).splitlines()[0]}") from None
        (partial / COMPLETE_MARKER).write_text(source + "\n", encoding="utf-8")
        _move_into_place(partial, target, locks)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _move_into_place(partial: Path, target: Path, locks: LockFolder) -> None:
    # The lock covers only check-and-rename: a complete copy is never replaced, so readers need no lock.
    with locks.for_path("download", target).hold(_RENAME_WAIT_S):
        if _download_complete(target):  # another evaluation finished the same download first: keep its copy
            return
        if target.exists():
            discard_dir(target)  # an interrupted download (or one by an older swerl, written in place): never trusted
        os.rename(partial, target)


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or ``None`` (also when the model is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_registered_model(name).aliases.get(alias) or "") or None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def version_metrics(client: Any, name: str, version: str) -> dict[str, str]:
    """The ``eval.*`` tags of a version (metrics of the evaluation it was registered with)."""
    tags = client.get_model_version(name, version).tags
    return {k[len("eval.") :]: v for k, v in tags.items() if k.startswith("eval.")}
