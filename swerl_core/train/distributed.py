"""Process-level setup for DeepSpeed: the distributed environment and the accelerator choice.

DeepSpeed reads its setup from the process environment, so this is the one place where training
writes ``os.environ``. Under a launcher (``accelerate launch``, ``torchrun``, ``deepspeed``) the
variables already exist and are left alone; a plain ``swerl train`` gets a single-process group on
127.0.0.1 with a free port, and on a machine without CUDA DeepSpeed is pointed at its CPU accelerator
(gloo backend; see shared/STACK.md "Training on CPU").
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping


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
