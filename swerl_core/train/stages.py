"""The two TRL trainers of a recipe, built from prepared pieces: GRPO on the SWE-RL reward, SFT on oracles.

Construction only: datasets, arguments, the reward adapter and callbacks come in ready-made from
:mod:`.trainer`. The GRPO trainer is TRL's with one addition — it times generation (transformers or
vLLM) and reports it as ``generation_time_s`` beside TRL's own metrics; with vLLM (a colocated engine or a rollout
server) it also reports the tokens vLLM generated (``vllm/generated_tokens``), and a rollout server's failure names
the step it stopped.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from swerl_core.train.rollout_client import RolloutServerError, ServerRollouts, count_server_tokens, server_generation
from swerl_core.vllm_engine import engine_on_gpu, starting_engine

TOKENS = "vllm/generated_tokens"  # a step's completion tokens as vLLM returned them

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
    rollouts: ServerRollouts | None = None,
) -> GRPOTrainer:
    """TRL's GRPO trainer over ``dataset`` with the SWE-RL reward and generation timing; in server mode it
    generates through ``rollouts``' server, with its deadlines and weight sync."""
    colocated = args.use_vllm and args.vllm_mode == "colocate"
    with server_generation(rollouts) if rollouts is not None else starting_engine() if colocated else nullcontext():
        trainer = _timed_grpo_class()(
            model=model,
            reward_funcs=[reward],
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    if colocated:
        _count_engine_tokens(trainer)
        if args.use_cpu or not engine_on_gpu():
            _reload_weights_in_place(trainer.vllm_generation)
    if rollouts is not None:
        trainer.vllm_generation.step_of = lambda: trainer.state.global_step  # the version each sync carries
        count_server_tokens(trainer.vllm_generation, lambda tokens: trainer._metrics["train"][TOKENS].append(tokens))
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


def _reload_weights_in_place(generation: Any) -> None:
    """Sync the trainer's weights into a colocated engine on a CPU through vLLM's in-place reload.

    TRL writes each parameter with the model's ``load_weights``, which on a GPU lands in the weights the kernels read.
    On a CPU vLLM repacks every linear layer's weight for its GEMM kernels after loading and drops the original
    (``dispatch_cpu_unquantized_gemm``), so that write fails (``'Parameter' object has no attribute 'weight_loader'``)
    and would miss the packed copy anyway. :func:`~swerl_core.vllm_engine.reload_in_place` restores the layers,
    loads, and packs them again.
    """
    llm = generation.llm

    def sync_weights() -> None:
        from swerl_core.vllm_engine import reload_in_place

        runner = llm.llm_engine.model_executor.driver_worker.model_runner
        # TRL's own walk over the parameters: full tensors under ZeRO-3, PEFT adapters merged, vLLM's names. Each is
        # copied: a ZeRO-3 parameter is released when the walk moves on, and the reload keeps a layer's parameters
        # until the layer is complete.
        reload_in_place(runner, ((name, tensor.detach().clone()) for name, tensor in generation._iter_named_params()))
        llm.reset_prefix_cache()

    generation.sync_weights = sync_weights


def _count_engine_tokens(trainer: Any) -> None:
    """Make each step report ``vllm/generated_tokens``: the tokens the colocated engine itself returned.

    The count comes from vLLM's own outputs, so a run whose rollouts silently fell back to another generator
    reports none; it equals the step's completion tokens when vLLM made them all.
    """
    llm = trainer.vllm_generation.llm  # TRL 1.16: the colocated engine, one per rank (trl is pinned)
    generate = llm.generate

    def counted(*args: Any, **kwargs: Any) -> Any:
        outputs = generate(*args, **kwargs)
        tokens = sum(len(sample.token_ids) for output in outputs for sample in output.outputs)
        trainer._metrics["train"][TOKENS].append(float(tokens))
        return outputs

    llm.generate = counted


def _timed_grpo_class() -> type:
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that reports the wall time of each rollout generation."""

        # `_generate` and `_metrics` are TRL 1.16 internals (trl is pinned): `_generate` produces every
        # completion of a generation batch, and `_metrics` values are averaged into each log record.
        def _generate(self, prompts: list[Any]) -> Any:
            start = time.perf_counter()
            try:
                result = super()._generate(prompts)
            except RolloutServerError as exc:
                raise exc.at_step(self.state.global_step + 1) from None
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["generation_time_s"].append(time.perf_counter() - start)
            return result

    return TimedGRPOTrainer
