"""The plan of a training recipe: what one GPU must hold, checked before any process or pod starts.

The recipe's model is built on PyTorch's meta device from its config (shapes only: no weights, no memory), so
the parameter count is the architecture's own (Llama 3.1 8B: 8.03 B; Llama 3.3 70B: 70.6 B). The memory of
one training GPU is then summed from the recipe: weights, gradients and Adam's states, each divided over the
ranks as the DeepSpeed ZeRO stage shards it (stage 1: optimizer states; 2: and gradients; 3: and weights; an
offloaded part leaves the GPU), GRPO's reference model when ``beta > 0``, ZeRO-3's gathered parameters, the
activations of one micro-batch at the recipe's full sequence length, its logits, and vLLM's share when it is
colocated. These are estimates of the big terms (the allocator's fragmentation and the CUDA context are not
counted), written out in :func:`plan_training` so that a reader can check each one.

A rollout server's GPU holds the weights (split over its tensor-parallel GPUs) and a KV cache that must hold at
least one rollout of ``max_model_len`` tokens. The batch layout (completions per step over ranks and
generations) is already checked when the recipe is read (:mod:`.config`); the plan prints it.

``swerl train --plan`` prints the plan; :func:`swerl_core.train.run` refuses a recipe that does not fit with
one line. Torch and transformers load only when a plan is made; TRL, DeepSpeed and MLflow never.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.package_files import repository_file
from swerl_core.train.config import Stage, TrainConfig
from swerl_core.train.errors import TrainError

GIB = 2**30

# The architectures of the base models the shipped recipes name, from their published config.json (shapes only),
# so that a plan needs neither a download nor a token.
_LLAMA3_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32}
_LLAMA3_70B = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64}
_LLAMA3_SHARED = {
    "model_type": "llama",
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
}
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA3_8B | _LLAMA3_SHARED,
    "meta-llama/Llama-3.1-8B": _LLAMA3_8B | _LLAMA3_SHARED,
    "meta-llama/Llama-3.3-70B-Instruct": _LLAMA3_70B | _LLAMA3_SHARED,
    "meta-llama/Llama-3.1-70B-Instruct": _LLAMA3_70B | _LLAMA3_SHARED,
    "meta-llama/Llama-3.1-70B": _LLAMA3_70B | _LLAMA3_SHARED,
}

# DeepSpeed's default for stage3_max_live_parameters: the most parameters ZeRO-3 holds gathered at once.
_MAX_LIVE_PARAMETERS = 1_000_000_000


@dataclass(frozen=True)
class Need:
    """One line of a GPU's memory: what it holds, how many bytes, and how that was computed."""

    what: str
    bytes: float
    how: str


@dataclass(frozen=True)
class Zero:
    """The DeepSpeed ZeRO settings that move memory: the stage (0 without DeepSpeed) and what is offloaded."""

    stage: int = 0
    offload_optimizer: bool = False
    offload_parameters: bool = False
    max_live_parameters: int = _MAX_LIVE_PARAMETERS


@dataclass(frozen=True)
class TrainPlan:
    """What a recipe's stage needs, per GPU, and why it cannot run (``problems``, empty when it can)."""

    recipe: str
    stage: Stage
    model: str
    architecture: str  # where the config came from
    parameters: int
    zero: Zero
    world_size: int
    gpu_memory_gib: float | None  # None: not judged (a CPU recipe)
    training: tuple[Need, ...]
    rollout: tuple[Need, ...]  # one rollout server GPU; empty without vLLM servers
    rollout_budget: float  # bytes vLLM may take on one rollout GPU (0 without servers or GPU memory)
    layout: tuple[str, ...]
    problems: tuple[str, ...]
    colocated: bool = False  # vLLM inside each training rank, not on rollout servers

    @property
    def per_gpu(self) -> float:
        """Bytes one training GPU holds at its peak."""
        return sum(need.bytes for need in self.training)

    def refusal(self) -> str:
        """The one line a refused recipe prints."""
        return f"recipe {self.recipe!r} cannot run ({self.stage}): {self.problems[0]}" + (
            f" (and {len(self.problems) - 1} more: `swerl train --recipe {self.recipe} --plan`)"
            if len(self.problems) > 1
            else ""
        )

    def render(self) -> str:
        """The plan as a short text table (``swerl train --plan``, the train flow's artifact)."""
        zero = f"ZeRO-{self.zero.stage}" if self.zero.stage else "no DeepSpeed (every rank holds everything)"
        offload = [
            n
            for n, on in (("optimizer", self.zero.offload_optimizer), ("parameters", self.zero.offload_parameters))
            if on
        ]
        lines = [
            f"recipe {self.recipe} ({self.stage}): {self.model} ({self.architecture})",
            f"parameters: {self.parameters:,} ({_in_short(self.parameters)})",
            f"layout: {self.world_size} training rank{'s' if self.world_size != 1 else ''}, {zero}"
            + (f", {' and '.join(offload)} offloaded to CPU" if offload else ""),
            *(f"  {line}" for line in self.layout),
            "memory per training GPU:",
            *_table(self.training),
        ]
        available = (
            f" of {self.gpu_memory_gib:g} GiB" if self.gpu_memory_gib else " (gpu_memory_gib not set: not judged)"
        )
        lines.append(f"  {'total':<24} {self.per_gpu / GIB:9.2f} GiB{available}")
        if self.rollout:
            colocated = self.colocated
            title = "vLLM's share of each training GPU (colocated):" if colocated else "memory per rollout server GPU:"
            lines += [title, *_table(self.rollout)]
            if self.rollout_budget:
                key = "grpo.vllm_gpu_memory_utilization" if colocated else "rollout.gpu_memory_utilization"
                lines.append(f"  {'vLLM budget':<24} {self.rollout_budget / GIB:9.2f} GiB ({key})")
        lines.append("fits" if not self.problems else "does not fit:")
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def _table(needs: tuple[Need, ...]) -> list[str]:
    return [f"  {need.what:<24} {need.bytes / GIB:9.2f} GiB  {need.how}" for need in needs]


def model_architecture(model: str, home: Path) -> tuple[Any, str]:
    """The transformers config of ``model`` without downloading: a local folder's config.json (absolute, under
    ``home`` or the cwd), else a base model the shipped recipes name, else the Hugging Face cache. Raises
    :class:`TrainError` when none has it."""
    from transformers import AutoConfig

    for folder in (Path(model).expanduser(), home / model):
        if (folder / "config.json").is_file():
            try:
                return AutoConfig.from_pretrained(folder), f"{folder / 'config.json'}"
            except (OSError, ValueError, TypeError, KeyError, ArithmeticError) as exc:  # a config transformers refuses
                reason = " ".join(str(exc).split())[:200]
                raise TrainError(f"base model {folder}: its config.json cannot be read ({reason})") from None
    if model in KNOWN_ARCHITECTURES:
        known = dict(KNOWN_ARCHITECTURES[model])
        return AutoConfig.for_model(known.pop("model_type"), **known), "its published architecture"
    try:
        return AutoConfig.from_pretrained(model, local_files_only=True), "the Hugging Face cache"
    except (OSError, ValueError):
        raise TrainError(
            f"no architecture for base model {model!r} here: point base_model at a folder holding its config.json"
        ) from None


def count_parameters(config: Any) -> int:
    """The parameters of the causal LM ``config`` describes, built on the meta device (no memory, no weights)."""
    return _count_parameters(config.to_json_string())


@functools.lru_cache(maxsize=16)  # a flow plans each stage of one architecture: build its shapes once
def _count_parameters(config_json: str) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    data = json.loads(config_json)
    try:
        config = AutoConfig.for_model(data.pop("model_type"), **data)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:  # no causal LM of that type
        reason = " ".join(str(exc).split())[:200]
        raise TrainError(f"cannot build a causal LM from this config ({type(exc).__name__}: {reason})") from None
    return sum(p.numel() for p in model.parameters())  # tied embeddings are one parameter, counted once


def zero_settings(deepspeed: Path | None) -> Zero:
    """The ZeRO stage and offloads of a DeepSpeed config file (``None``: no DeepSpeed)."""
    if deepspeed is None:
        return Zero()
    path = repository_file(deepspeed)
    try:
        zero = json.loads(path.read_text(encoding="utf-8")).get("zero_optimization", {})
        stage = zero.get("stage", 0) if isinstance(zero, dict) else None
        if not isinstance(stage, int) or isinstance(stage, bool) or not 0 <= stage <= 3:
            raise ValueError("zero_optimization must be a mapping whose stage is 0, 1, 2 or 3")
    except (OSError, ValueError, AttributeError) as exc:
        raise TrainError(f"deepspeed config {deepspeed}: cannot read it ({exc})") from None

    def offloaded(key: str) -> bool:
        section = zero.get(key)
        return isinstance(section, dict) and section.get("device") in ("cpu", "nvme")

    live = zero.get("stage3_max_live_parameters", _MAX_LIVE_PARAMETERS)
    if live == "auto":
        live = _MAX_LIVE_PARAMETERS
    if not isinstance(live, (int, float)) or isinstance(live, bool) or not 0 < live < 1e15:
        raise TrainError(
            f"deepspeed config {deepspeed}: stage3_max_live_parameters must be a positive number or auto, got {live!r}"
        )
    return Zero(
        stage=int(zero.get("stage", 0)),
        offload_optimizer=offloaded("offload_optimizer"),
        offload_parameters=offloaded("offload_param"),
        max_live_parameters=int(live),
    )


def plan_training(
    recipe: TrainConfig,
    stage: Stage,
    home: Path,
    *,
    base_model: str | None = None,
    gpu_memory_gib: float | None = None,
) -> TrainPlan:
    """The plan of ``stage`` of ``recipe`` on ``base_model`` (default the recipe's), judged against
    ``gpu_memory_gib`` (default the recipe's). Raises :class:`TrainError` when the model's architecture or the
    DeepSpeed config cannot be read; a recipe that does not fit is a plan with ``problems``."""
    model = base_model or recipe.base_model
    config, source = model_architecture(model, home)
    parameters = count_parameters(config)
    zero = zero_settings(recipe.deepspeed)
    gpu_memory = gpu_memory_gib if gpu_memory_gib is not None else recipe.gpu_memory_gib
    try:
        shape = _Shape.of(config)
    except (AttributeError, TypeError, ValueError) as exc:
        raise TrainError(f"base model {model!r}: its config lacks a decoder's shape ({exc})") from None
    training = _training_needs(recipe, stage, parameters, zero, shape, gpu_memory)
    problems: list[str] = []
    sequence = recipe.max_prompt_length + recipe.max_completion_length
    if sequence > shape.max_positions:
        problems.append(
            f"max_prompt_length + max_completion_length = {sequence:,} tokens exceeds the model's "
            f"{shape.max_positions:,} positions"
        )
    if gpu_memory:
        total = sum(need.bytes for need in training)
        if total > gpu_memory * GIB:
            biggest = ", ".join(f"{n.what} {n.bytes / GIB:.1f}" for n in sorted(training, key=lambda n: -n.bytes)[:3])
            problems.append(
                f"{total / GIB:.1f} GiB per training GPU against {gpu_memory:g} GiB ({biggest} GiB): shard more "
                "(ZeRO-3, more ranks), offload, or shorten the micro-batch or the sequence"
            )
    rollout: tuple[Need, ...] = ()
    budget = 0.0
    if stage == "grpo" and recipe.grpo.use_vllm:
        rollout, budget, rollout_problems = _rollout_needs(recipe, parameters, shape, gpu_memory)
        problems += rollout_problems
    return TrainPlan(
        recipe=recipe.name,
        stage=stage,
        model=model,
        architecture=source,
        parameters=parameters,
        zero=zero,
        world_size=recipe.world_size,
        gpu_memory_gib=gpu_memory,
        training=training,
        rollout=rollout,
        rollout_budget=budget,
        layout=_layout(recipe, stage),
        problems=tuple(problems),
        colocated=stage == "grpo" and recipe.grpo.use_vllm and recipe.grpo.vllm_mode == "colocate",
    )


@dataclass(frozen=True)
class _Shape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    max_positions: int

    @classmethod
    def of(cls, config: Any) -> _Shape:
        heads = int(config.num_attention_heads)
        if heads <= 0 or int(config.hidden_size) <= 0 or int(config.num_hidden_layers) <= 0:
            raise ValueError("hidden_size, num_hidden_layers and num_attention_heads must be positive")
        return cls(
            hidden=int(config.hidden_size),
            intermediate=int(getattr(config, "intermediate_size", 4 * config.hidden_size)),
            layers=int(config.num_hidden_layers),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            vocab=int(config.vocab_size),
            max_positions=int(getattr(config, "max_position_embeddings", 0) or 2**31),
        )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def _training_needs(
    recipe: TrainConfig, stage: Stage, parameters: int, zero: Zero, shape: _Shape, gpu_memory: float | None
) -> tuple[Need, ...]:
    ranks = recipe.world_size
    # Without DeepSpeed the trainer keeps fp32 weights and autocasts to bf16; with it, bf16 weights and an fp32
    # master copy inside the optimizer. Either way 16 bytes a parameter before sharding (Adam: 2 states).
    half = recipe.bf16 and zero.stage > 0
    weight_bytes = 2 if half else 4
    optimizer_bytes = 12 if half else 8
    act_bytes = 2 if recipe.bf16 else 4

    def shard(total: float, sharded: bool) -> tuple[float, str]:
        return (total / ranks, f"/ {ranks} ranks") if sharded and ranks > 1 else (total, "on every rank")

    needs = []
    weights, how = shard(parameters * weight_bytes, zero.stage == 3)
    if zero.offload_parameters and zero.stage == 3:
        weights, how = 0.0, "offloaded to CPU"
    needs.append(Need("weights", weights, f"{weight_bytes} B × params {how}"))
    grads, how = shard(parameters * weight_bytes, zero.stage >= 2)
    needs.append(Need("gradients", grads, f"{weight_bytes} B × params {how}"))
    optimizer, how = shard(parameters * optimizer_bytes, zero.stage >= 1)
    if zero.offload_optimizer and zero.stage >= 1:
        optimizer, how = 0.0, "offloaded to CPU"
    needs.append(Need("optimizer (Adam)", optimizer, f"{optimizer_bytes} B × params {how}"))
    if stage == "grpo" and recipe.grpo.beta > 0:
        reference, how = shard(parameters * (2 if recipe.bf16 else 4), zero.stage == 3)
        needs.append(Need("reference model", reference, f"beta = {recipe.grpo.beta:g}: frozen weights {how}"))
    if zero.stage == 3 and ranks > 1:  # on one rank every weight is already whole
        live = min(parameters, zero.max_live_parameters)
        needs.append(Need("gathered parameters", live * weight_bytes, f"ZeRO-3 working set ({live:,} params)"))
    micro = recipe.grpo.per_device_batch_size if stage == "grpo" else recipe.sft.per_device_batch_size
    sequence = recipe.max_prompt_length + recipe.max_completion_length
    tokens = micro * sequence
    # One decoder layer's saved tensors per token: the norms, q/k/v, attention output and projection, the residual
    # stream (≈ 8 × hidden + 2 × kv width), and the MLP's gate, up and product (3 × intermediate).
    per_layer = tokens * (8 * shape.hidden + 2 * shape.kv_heads * shape.head_dim + 3 * shape.intermediate) * act_bytes
    if recipe.gradient_checkpointing:
        activations = shape.layers * tokens * shape.hidden * act_bytes + per_layer
        how = f"{micro} × {sequence:,} tokens: each layer's input, one layer recomputed"
    else:
        activations = shape.layers * per_layer
        how = f"{micro} × {sequence:,} tokens × {shape.layers} layers (no gradient checkpointing)"
    needs.append(Need("activations", activations, how))
    scored = recipe.max_completion_length if stage == "grpo" else sequence  # GRPO scores the completion only
    needs.append(
        Need(
            "logits", 2 * micro * scored * shape.vocab * act_bytes, f"{micro} × {scored:,} × vocab, and their gradient"
        )
    )
    if stage == "grpo" and recipe.grpo.use_vllm and recipe.grpo.vllm_mode == "colocate" and gpu_memory:
        share = recipe.grpo.vllm_gpu_memory_utilization
        needs.append(
            Need("vLLM (colocated)", share * (gpu_memory or 0) * GIB, f"grpo.vllm_gpu_memory_utilization {share:g}")
        )
    return tuple(needs)


def _rollout_needs(
    recipe: TrainConfig, parameters: int, shape: _Shape, gpu_memory: float | None
) -> tuple[tuple[Need, ...], float, list[str]]:
    """A rollout GPU: weights over its tensor-parallel group, and the KV cache left in vLLM's budget."""
    problems: list[str] = []
    sequence = recipe.max_prompt_length + recipe.max_completion_length
    max_model_len = recipe.rollout.max_model_len or sequence
    if max_model_len < sequence:
        problems.append(
            f"rollout.max_model_len {max_model_len:,} is below max_prompt_length + max_completion_length "
            f"({sequence:,}): vLLM would refuse or cut the longest rollouts"
        )
    if max_model_len > shape.max_positions:
        problems.append(
            f"rollout.max_model_len {max_model_len:,} exceeds the model's {shape.max_positions:,} positions"
        )
    colocated = recipe.grpo.vllm_mode == "colocate"
    tp = 1 if colocated else recipe.rollout.tensor_parallel_size
    if shape.kv_heads % tp:
        problems.append(f"rollout.tensor_parallel_size {tp} does not divide the model's {shape.kv_heads} KV heads")
    value_bytes = 2 if recipe.bf16 else 4
    weights = parameters * value_bytes / tp
    kv_per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * value_bytes / tp  # keys and values
    utilization = recipe.grpo.vllm_gpu_memory_utilization if colocated else recipe.rollout.gpu_memory_utilization
    budget = utilization * gpu_memory * GIB if gpu_memory else 0.0
    one_rollout = kv_per_token * max_model_len
    needs = [Need("weights", weights, f"{value_bytes} B × params / {tp} tensor-parallel GPU(s)")]
    if not budget:
        needs.append(Need("KV cache", one_rollout, f"one rollout of {max_model_len:,} tokens (no GPU memory to judge)"))
    elif weights + one_rollout > budget:
        needs.append(Need("KV cache", one_rollout, f"one rollout of {max_model_len:,} tokens"))
        problems.append(
            f"a rollout GPU cannot hold the weights ({weights / GIB:.1f} GiB) and one {max_model_len:,}-token "
            f"rollout ({one_rollout / GIB:.1f} GiB) in vLLM's {budget / GIB:.1f} GiB: raise "
            "rollout.tensor_parallel_size or the memory utilization"
        )
    else:
        rollouts = int((budget - weights) // one_rollout)
        needs.append(
            Need("KV cache", budget - weights, f"{rollouts:,} rollouts of {max_model_len:,} tokens at once (the rest)")
        )
    return tuple(needs), budget, problems


def _layout(recipe: TrainConfig, stage: Stage) -> tuple[str, ...]:
    if stage == "sft":
        s = recipe.sft
        per_update = s.per_device_batch_size * recipe.world_size * s.gradient_accumulation_steps
        return (
            f"SFT: {s.per_device_batch_size} example(s) per rank per micro-step × {recipe.world_size} ranks × "
            f"{s.gradient_accumulation_steps} accumulation = {per_update} per update",
        )
    g = recipe.grpo
    lines = [
        f"GRPO: {g.prompts_per_step} prompts × {g.num_generations} generations = {g.completions_per_step} completions "
        f"per step = {g.per_device_batch_size} per rank per micro-step × {recipe.world_size} ranks × "
        f"{recipe.grpo_gradient_accumulation_steps} accumulation",
        f"sequence: {recipe.max_prompt_length:,} prompt + {recipe.max_completion_length:,} completion tokens",
    ]
    if g.use_vllm and g.vllm_mode == "server":
        r = recipe.rollout
        lines.append(
            f"rollouts: vLLM servers of {r.gpus} GPUs ({r.tensor_parallel_size} tensor × {r.data_parallel_size} data "
            f"parallel), max_model_len {(r.max_model_len or recipe.max_prompt_length + recipe.max_completion_length):,}"
        )
    elif g.use_vllm:
        lines.append(f"rollouts: vLLM colocated on each training GPU ({g.vllm_gpu_memory_utilization:g} of its memory)")
    else:
        lines.append("rollouts: transformers generation on the training ranks")
    return tuple(lines)


def _in_short(count: int) -> str:
    """``8.03 B`` for billions, ``577.7 k`` for thousands: the scale a reader compares with a model card."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.2f} {unit}" if unit == "B" else f"{count / size:.1f} {unit}"
    return str(count)
