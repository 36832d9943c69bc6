"""Shared pieces of the flow tests: the sample world served over HTTP, a test-sized recipe, and the
environment through which settings reach flows (exactly as for the CLI)."""

from __future__ import annotations

from pathlib import Path

import yaml

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model

TOKEN = "flow-test-token"
HELDOUT_AFTER = "2026-03-01T00:00:00+00:00"


def write_recipe(directory: Path, model_dir: Path, name: str = "flowtest") -> Path:
    """A recipe that trains the tiny model for a handful of steps (SFT 2, GRPO 2, a checkpoint each step)."""
    recipe = {
        "name": name,
        "base_model": str(model_dir),
        "max_prompt_length": 2048,
        "max_completion_length": 48,
        "samples_to_log": 2,
        "grpo": {"prompts_per_step": 2, "num_generations": 2, "per_device_batch_size": 4,
                 "max_steps": 2, "save_steps": 1},
        "sft": {"max_steps": 2, "per_device_batch_size": 2, "save_steps": 50},
    }  # fmt: skip
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def tiny_model(directory: Path) -> Path:
    """The smallest tiny Llama the trainer accepts."""
    spec = TinyModelSpec(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)
    return init_tiny_model(directory / "tiny", spec)


def flow_env(home: Path, server: FakeGitHub, repos: list[str]) -> dict[str, str]:
    """SWERL_* variables pointing every flow at ``home`` and the local GitHub server, with a small evaluation."""
    return {
        "SWERL_HOME": str(home),
        "SWERL_GITHUB_API_URL": server.url,
        "SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS": "0",
        "SWERL_GITHUB__BACKOFF_S": "0",
        "SWERL_GITHUB__LOCAL_CLONES": "true",
        "SWERL_INGEST__REPOS": ",".join(repos),
        "SWERL_CURATE__HELDOUT_AFTER": HELDOUT_AFTER,
        "SWERL_EVALUATE__LIMIT": "3",
        "SWERL_EVALUATE__MAX_NEW_TOKENS": "32",
        "SWERL_STORE__LOCK_TIMEOUT_S": "300",
        "SWERL_REGISTRY__POLICY": "auto",
        "SWERL_REGISTRY__REWARD_FLOOR": "-1",
        "SWERL_REGISTRY__FORMAT_ERROR_CEILING": "1",
        "GITHUB_TOKEN": TOKEN,
    }
