"""Process-level setup for DeepSpeed: the distributed environment and the accelerator choice.

DeepSpeed reads its setup from the process environment, so this is the one place where training
writes ``os.environ``. Under a launcher (``accelerate launch``, ``torchrun``, ``deepspeed``) the
variables already exist and are left alone; a plain ``swerl train`` gets a single-process group on
127.0.0.1 with a free port, and on a machine without CUDA DeepSpeed is pointed at its CPU accelerator
(gloo backend; see shared/STACK.md "Training on CPU"). Several ranks on CPUs need Accelerate told that they are one
job (:func:`count_cpu_ranks`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launched_world_size(env: MutableMapping[str, str] | None = None) -> int:
    """Processes in this training job, as the launcher announced them (1 without a launcher)."""
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1"))


def launched_rank(env: MutableMapping[str, str] | None = None) -> int:
    """This process's global rank as the launcher announced it (0 without a launcher)."""
    env = os.environ if env is None else env
    return int(env.get("RANK", "0"))


def prepare_deepspeed_env(cuda_available: bool, env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Fill in what single-process DeepSpeed needs and a launcher would have set; returns what was set."""
    env = os.environ if env is None else env
    wanted = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    if not cuda_available:
        wanted["DS_ACCELERATOR"] = "cpu"
    added = {key: value for key, value in wanted.items() if key not in env}
    env.update(added)
    return added


def count_cpu_ranks() -> None:
    """Make Accelerate see every rank of a multi-process run on CPUs, so that they train as one job (gloo).

    Measured with Accelerate 1.15 under ``torchrun --nproc_per_node 2`` on a CPU: Transformers asks Accelerate for a
    GPU-style state, Accelerate finds no GPU backend and records one process (``DistributedType.NO``), while
    DeepSpeed has already joined both ranks in a gloo group. DeepSpeed's batch check then fails (``4 != 4 * 1 * 2``),
    and without DeepSpeed every rank trains alone on duplicated data. Accelerate's own multi-CPU state is the answer
    it would give with ``use_cpu``; this gives it for a launched job whose trainer did not ask for a CPU, and changes
    nothing where Accelerate found a backend itself. Call it before TRL's arguments are built.
    """
    from accelerate.state import DistributedType, PartialState

    original = PartialState._prepare_backend
    if getattr(original, "counts_cpu_ranks", False):
        return

    def prepare(self: PartialState, cpu: bool = False, sagemaker_dp: bool = False, backend: str | None = None) -> Any:
        chosen, kind = original(self, cpu, sagemaker_dp, backend)
        if chosen is None and not cpu and launched_world_size() > 1:
            return "gloo", DistributedType.MULTI_CPU
        return chosen, kind

    prepare.counts_cpu_ranks = True  # type: ignore[attr-defined]
    PartialState._prepare_backend = prepare  # type: ignore[method-assign]


# What a collective raises on a rank whose peer's process ended (gloo's TCP transport; NCCL's socket bootstrap).
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer")


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another rank's process ended: an echo of that rank's
    failure, which that rank reports itself (torch raises a plain ``RuntimeError`` carrying gloo's message)."""
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _PEER_GONE)


def echoes_another_rank(exc: BaseException) -> bool:
    """Whether this process, a rank other than the main one, failed only because another rank ended first; then it
    should exit without a line of its own, so that a user sees the main rank's one line."""
    return launched_world_size() > 1 and launched_rank() != 0 and peer_lost(exc)
