"""The GRPO recipe the vLLM tests train: a model of the learnable world's shape on the sample snapshot, a few small
steps with a checkpoint after each, and the vLLM keys each test adds."""

from __future__ import annotations

from pathlib import Path

from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID


def vllm_recipe(name: str, model: Path, steps: int, prompts: int, generations: int, **grpo: object) -> dict:
    """A recipe (as its YAML mapping) of ``steps`` GRPO steps of ``prompts`` × ``generations`` completions in one
    micro-batch, with vLLM rollouts set by ``grpo``."""
    return {
        "name": name,
        "base_model": str(model),
        "snapshot": SAMPLE_SNAPSHOT_ID,
        "seed": 5,
        "max_prompt_length": 1024,
        "max_completion_length": 48,
        "samples_to_log": 4,
        "grpo": {
            "prompts_per_step": prompts,
            "num_generations": generations,
            "per_device_batch_size": prompts * generations,
            "max_steps": steps,
            "save_steps": 1,
            "learning_rate": 1e-4,
            "use_vllm": True,
            **grpo,
        },
    }
