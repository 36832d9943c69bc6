"""The two TRL trainers of a recipe, built from prepared pieces: GRPO on the SWE-RL reward, SFT on oracles.

Construction only: datasets, arguments, the reward adapter and callbacks come in ready-made from
:mod:`.trainer`. The GRPO trainer is TRL's with one addition — it times generation (transformers or
the vLLM server) and reports it as ``generation_time_s`` beside TRL's own metrics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from swerl_core.train.reward_fn import SweRLReward


def build_grpo_trainer(
    model: str,
    tokenizer: Any,
    args: GRPOConfig,
    dataset: Dataset,
    reward: SweRLReward,
    callbacks: list[TrainerCallback],
) -> GRPOTrainer:
    """TRL's GRPO trainer over ``dataset`` with the SWE-RL reward and generation timing."""
    trainer = _timed_grpo_class()(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    return _quiet(trainer)


def build_sft_trainer(
    model: str, tokenizer: Any, args: SFTConfig, dataset: Dataset, callbacks: list[TrainerCallback]
) -> SFTTrainer:
    """TRL's SFT trainer over prompt/answer pairs (loss on the answer only)."""
    from trl import SFTTrainer

    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks)
    return _quiet(trainer)


def _quiet(trainer: Any) -> Any:
    # Progress lines come from our MLflow callback; Transformers' printer would repeat every record.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def _timed_grpo_class() -> type:
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that reports the wall time of each rollout generation."""

        # `_generate` and `_metrics` are TRL 1.16 internals (trl is pinned): `_generate` produces every
        # completion of a generation batch, and `_metrics` values are averaged into each log record.
        def _generate(self, prompts: list[Any]) -> Any:
            start = time.perf_counter()
            result = super()._generate(prompts)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["generation_time_s"].append(time.perf_counter() - start)
            return result

    return TimedGRPOTrainer
