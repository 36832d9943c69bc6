"""Mapping a :class:`~swerl_core.train.config.TrainConfig` onto TRL's ``GRPOConfig`` and ``SFTConfig``.

One function per stage; every TRL field we set is set here, so a reader sees the whole translation in
one place. Reporting goes through our own MLflow callback (``report_to="none"``) so that the tracking
URI comes from swerl's settings, never from a global environment variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.train.config import TrainConfig

if TYPE_CHECKING:
    from trl import GRPOConfig, SFTConfig


def grpo_args(cfg: TrainConfig, output_dir: Path) -> GRPOConfig:
    """TRL's ``GRPOConfig`` for the GRPO stage of ``cfg``, checkpointing under ``output_dir``."""
    from trl import GRPOConfig

    g = cfg.grpo
    vllm: dict[str, Any] = {}
    if g.use_vllm and g.vllm_mode == "server":
        vllm = {
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_server_base_url": g.vllm_server_url,
            "vllm_server_timeout": g.vllm_server_timeout_s,
        }
    elif g.use_vllm:
        vllm = {
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization,
            # The engine's context is the recipe's budgets, not the model's maximum: a smaller KV cache per sequence.
            "vllm_max_model_length": cfg.max_prompt_length + cfg.max_completion_length,
        }
    return GRPOConfig(
        per_device_train_batch_size=g.per_device_batch_size,
        gradient_accumulation_steps=cfg.grpo_gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler,
        max_steps=g.max_steps,
        loss_type=g.loss_type,
        beta=g.beta,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        scale_rewards=g.scale_rewards,
        num_iterations=g.num_iterations,
        mask_truncated_completions=g.mask_truncated_completions,
        **_common(cfg, output_dir, g.save_steps),
        **vllm,
    )


def sft_args(cfg: TrainConfig, output_dir: Path) -> SFTConfig:
    """TRL's ``SFTConfig`` for the SFT warm start of ``cfg`` (loss on the answer tokens only)."""
    from trl import SFTConfig

    s = cfg.sft
    return SFTConfig(
        per_device_train_batch_size=s.per_device_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.lr_scheduler,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        max_length=cfg.max_prompt_length + cfg.max_completion_length,
        completion_only_loss=True,
        packing=False,
        dataset_num_proc=None,
        **_common(cfg, output_dir, s.save_steps),
    )


def _common(cfg: TrainConfig, output_dir: Path, save_steps: int) -> dict[str, object]:
    return {
        "output_dir": str(output_dir),
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_only_model": False,  # optimizer, scheduler and RNG states are what make --resume exact
        "report_to": "none",
        "bf16": cfg.bf16,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "deepspeed": str(cfg.deepspeed) if cfg.deepspeed is not None else None,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
