"""Weight sync through a shared directory: the trainer writes a numbered *weights version*, every rollout server
loads it and answers with the version and the write's nonce it now serves.

The second way GRPO's rollout servers get the policy's weights (``grpo.vllm_weight_sync: directory``), beside
TRL's NCCL broadcast: it works on a CPU (vLLM 0.32's weight-transfer engines are all CUDA) and between nodes that
cannot open NCCL to each other, as long as both mount the directory. Both halves live here because they share the
layout: the trainer side (:func:`write_weights`, :func:`prune_weights`) and the server side
(:class:`DirectoryReload`, the vLLM worker extension that ``swerl-rollout --weight-sync directory`` installs).

A version is a folder ``v<version>`` holding safetensors shards (written while the parameters are walked, so the
trainer never holds a second copy of the whole model) and ``weights.json``: the version, a nonce unique to this
write, and the shards in load order. It is written under a temporary name and renamed, so a server never sees half
a version.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.errors import SwerlError

MANIFEST = "weights.json"
WEIGHTS_DIR_ENV = "SWERL_WEIGHTS_DIR"  # the server's root: it loads versions from inside it only
_VERSION_NAME = re.compile(r"\.?v\d{8}(-[0-9a-f]{32})?")  # v<version>, or its staging .v<version>-<nonce>
SHARD_BYTES = 2 << 30  # a shard is written once this many bytes of tensors are waiting


class WeightSyncError(SwerlError):
    """A weights version cannot be written, read or loaded (missing, partial, outside the server's root)."""


@dataclass(frozen=True)
class WeightsVersion:
    """One written version: where it is, its number, and the nonce that names this very write."""

    path: Path
    version: int
    nonce: str
    tensors: int


def version_dir(root: Path, version: int) -> Path:
    """The folder of ``version`` under ``root``."""
    return root / f"v{version:08d}"


def write_weights(root: Path, version: int, weights: Iterable[tuple[str, Any]]) -> WeightsVersion:
    """Write ``weights`` (names as the checkpoint has them, full tensors) as ``version`` under ``root``.

    A version written before under the same number (a resumed run syncs its first step again) is replaced.
    """
    from safetensors.torch import save_file

    nonce = uuid.uuid4().hex
    staging = root / f".v{version:08d}-{nonce}"
    staging.mkdir(parents=True)
    shards: list[str] = []
    pending: dict[str, Any] = {}
    pending_bytes = 0
    tensors = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        name = f"shard-{len(shards):05d}.safetensors"
        save_file(pending, str(staging / name))
        shards.append(name)
        pending, pending_bytes = {}, 0

    try:
        for name, tensor in weights:
            # A copy: under ZeRO-3 the walk releases each gathered parameter as it moves on.
            pending[name] = tensor.detach().to("cpu", copy=True).contiguous()
            pending_bytes += tensor.numel() * tensor.element_size()
            tensors += 1
            if pending_bytes >= SHARD_BYTES:
                flush()
        if pending or not shards:
            flush()
        manifest = {"version": version, "nonce": nonce, "shards": shards, "tensors": tensors}
        (staging / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        final = version_dir(root, version)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WeightsVersion(final, version, nonce, tensors)


def prune_weights(root: Path, keep: WeightsVersion | None = None) -> None:
    """Delete every version under ``root`` but ``keep`` (the servers confirmed it, so none reads another), and the
    staging folders of writes that were killed; nothing else, whatever else ``root`` holds."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if (keep is None or entry != keep.path) and entry.is_dir() and _VERSION_NAME.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def remove_weights(root: Path) -> None:
    """Delete every version under ``root``, and ``root`` itself once it is empty: the end of a run's sync.

    Never the whole tree: ``grpo.vllm_weights_dir`` may make ``root`` a folder that holds more (``checkpoints``
    makes it the run's own folder, with its checkpoints and ``final/``).
    """
    prune_weights(root)
    with contextlib.suppress(OSError):
        root.rmdir()  # only if empty


def read_weights(path: Path) -> tuple[dict[str, Any], Iterator[tuple[str, Any]]]:
    """The manifest of the version at ``path`` and an iterator over its tensors, shard by shard."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        shards = [path / name for name in manifest["shards"]]
        int(manifest["version"])
        str(manifest["nonce"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightSyncError(f"no readable weights version at {path}: {exc}") from None
    missing = [shard.name for shard in shards if not shard.is_file() or shard.parent != path]
    if missing:
        raise WeightSyncError(f"weights version at {path} lacks its shards {', '.join(missing)}")

    def tensors() -> Iterator[tuple[str, Any]]:
        from safetensors import safe_open

        for shard in shards:
            with safe_open(str(shard), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 (a safetensors handle is not a mapping)
                    yield name, handle.get_tensor(name)

    return manifest, tensors()


def tensor_shapes(files: Iterable[Path]) -> dict[str, list[int]]:
    """The name and shape of every tensor in the safetensors ``files``, from their headers (no tensor is read)."""
    from safetensors import safe_open

    shapes: dict[str, list[int]] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (a safetensors handle is not a mapping)
                shapes[name] = list(handle.get_slice(name).get_shape())
    return shapes


def misfits(version: dict[str, list[int]], served: dict[str, list[int]]) -> list[str]:
    """The tensors of a version whose shape differs from the served model's tensor of the same name."""
    wrong = (name for name, shape in version.items() if served.get(name, shape) != shape)
    return [f"{name} {version[name]} (served: {served[name]})" for name in wrong]


def inside_root(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves to a folder inside ``root`` (links followed), never ``root`` itself."""
    resolved, base = path.resolve(), root.resolve()
    return resolved != base and resolved.is_relative_to(base)


class DirectoryReload:
    """vLLM worker extension (``--worker-extension-cls``): load a weights version and say which one is served.

    vLLM mixes this class into each of its workers, so ``self.model_runner`` is the worker's. The server's
    ``/collective_rpc`` passes arguments as strings; each method returns JSON-ready values, one per worker.
    """

    model_runner: Any

    def swerl_load_weights(self, path: str, version: str) -> dict[str, Any]:
        """Load the weights version at ``path`` (which must be ``version``) into this worker's model."""
        from swerl_core.vllm_engine import reload_in_place

        root = os.environ.get(WEIGHTS_DIR_ENV)
        folder = Path(path)
        if not root or not inside_root(folder, Path(root)):
            raise WeightSyncError(f"weights at {path} are outside this server's weights directory {root}")
        manifest, tensors = read_weights(folder)
        if int(manifest["version"]) != int(version):
            raise WeightSyncError(f"{path} holds version {manifest['version']}, not the {version} asked for")
        # A tensor of another shape fails vLLM's reload half-way and leaves the engine dead (measured): check first.
        model = Path(str(self.model_runner.model_config.model))
        if not hasattr(self, "swerl_shapes"):
            self.swerl_shapes = tensor_shapes(sorted(model.glob("*.safetensors"))) if model.is_dir() else {}
        wrong = misfits(tensor_shapes(folder / name for name in manifest["shards"]), self.swerl_shapes)
        if wrong:
            raise WeightSyncError(
                f"{path} does not fit the served model {model}: {len(wrong)} tensors of another shape, e.g. {wrong[0]}"
            )
        reload_in_place(self.model_runner, tensors)
        served = {"version": int(manifest["version"]), "nonce": str(manifest["nonce"])}
        self.swerl_served = served
        return served

    def swerl_weights_version(self) -> dict[str, Any] | None:
        """The version this worker serves, or ``None`` while it still serves the weights it started with."""
        return getattr(self, "swerl_served", None)
