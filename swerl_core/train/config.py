"""The training recipe: one frozen, typed config read from ``deployments/configs/*.yaml`` (or another file).

A recipe has top-level keys shared by both stages, a ``grpo`` section and an ``sft`` section. Values
are checked once, here, with errors that name the key and what it accepts (unknown keys included);
batch arithmetic that TRL would reject later, or would silently round, is rejected up front.
This module never imports torch, TRL or MLflow: mapping onto TRL lives in :mod:`.trl_args`.

Batch vocabulary (paper §3: 32 prompts × 16 rollouts per step): a *step* is one optimizer update
over ``prompts_per_step × num_generations`` completions; each of ``world_size`` processes handles
``per_device_batch_size`` completions per micro-step, so gradient accumulation is derived, never set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swerl_core.config import as_dict, build_section, read_yaml_mapping
from swerl_core.errors import ConfigError, require_setting
from swerl_core.package_files import recipe_path

LossType = Literal["grpo", "dapo", "dr_grpo", "bnpo"]
RewardScaling = Literal["group", "batch", "none"]
Scheduler = Literal["constant", "linear", "cosine"]
Stage = Literal["sft", "grpo"]
VllmMode = Literal["server", "colocate"]
WeightSync = Literal["nccl", "directory"]

# The shortest well-formed answer (a one-word thought and a one-line SEARCH/REPLACE edit) is about
# 40 tokens under Llama 3's tokenizer; a completion budget below this can never earn a reward > −1.
MIN_ANSWER_TOKENS = 48
MAX_GPU_MEMORY_GIB = 1e6  # a bound on one GPU's memory that no device comes near: it keeps the plan's sums finite


@dataclass(frozen=True)
class GrpoConfig:
    """GRPO stage: rollouts per prompt, loss variant, KL, clipping, sampling and the vLLM server."""

    prompts_per_step: int = 32
    num_generations: int = 16  # rollouts per prompt: the group of GRPO
    per_device_batch_size: int = 4  # completions per process per micro-step
    learning_rate: float = 1e-6
    lr_scheduler: Scheduler = "constant"
    max_steps: int = 100
    save_steps: int = 50
    loss_type: LossType = "grpo"
    beta: float = 0.04  # KL coefficient; 0 drops the reference model
    epsilon: float = 0.2  # PPO clip range (low side, and high side unless epsilon_high is set)
    epsilon_high: float | None = None  # DAPO clip-higher, e.g. 0.28
    scale_rewards: RewardScaling = "group"  # Dr. GRPO uses "none"
    temperature: float = 1.0
    top_p: float = 1.0
    num_iterations: int = 1  # updates per generated batch (μ)
    mask_truncated_completions: bool = False
    use_vllm: bool = False  # rollouts from vLLM instead of transformers.generate
    vllm_mode: VllmMode = "server"  # server: `swerl-rollout` servers; colocate: an engine inside each training rank
    vllm_server_url: str | None = None  # server mode, e.g. http://rollout-0:8000
    vllm_server_timeout_s: float = 240.0  # server mode: how long the trainer waits for the server to come up
    vllm_request_timeout_s: float = 600.0  # server mode: one generation batch or weight sync; past it the run stops
    vllm_weight_sync: WeightSync = "nccl"  # server mode: nccl (CUDA, TRL's broadcast) or directory (any device)
    vllm_weights_dir: str | None = None  # directory sync: shared with the servers; None: the run's rollout-weights/
    vllm_gpu_memory_utilization: float = 0.3  # colocate mode: the share of each training GPU vLLM takes

    def __post_init__(self) -> None:
        _positive(self, "grpo", "prompts_per_step", "per_device_batch_size", "max_steps", "save_steps")
        _positive(self, "grpo", "num_iterations")
        require_setting(
            self.num_generations >= 2, "grpo.num_generations", "an integer ≥ 2 (a group needs two rollouts)"
        )
        require_setting(self.learning_rate > 0, "grpo.learning_rate", "a positive number")
        require_setting(self.beta >= 0, "grpo.beta", "a non-negative number (0 disables the KL term)")
        require_setting(0 < self.epsilon < 1, "grpo.epsilon", "a number in (0, 1)")
        if self.epsilon_high is not None:
            require_setting(
                self.epsilon <= self.epsilon_high < 10, "grpo.epsilon_high", f"a number ≥ epsilon ({self.epsilon})"
            )
        require_setting(self.temperature > 0, "grpo.temperature", "a positive number")
        require_setting(0 < self.top_p <= 1, "grpo.top_p", "a number in (0, 1]")
        for key in ("vllm_server_timeout_s", "vllm_request_timeout_s"):
            value = getattr(self, key)
            require_setting(0 < value < float("inf"), f"grpo.{key}", "a positive number of seconds")
        if self.vllm_weights_dir is not None:
            require_setting(bool(str(self.vllm_weights_dir).strip()), "grpo.vllm_weights_dir", "a directory, or null")
        require_setting(
            0 < self.vllm_gpu_memory_utilization < 1, "grpo.vllm_gpu_memory_utilization", "a number in (0, 1)"
        )
        if self.use_vllm and self.vllm_mode == "server":
            require_setting(
                bool(self.vllm_server_url) and str(self.vllm_server_url).startswith(("http://", "https://")),
                "grpo.vllm_server_url",
                "an http(s) URL of a `swerl-rollout` server when grpo.use_vllm is true in server mode",
            )

    @property
    def completions_per_step(self) -> int:
        """Completions in one optimizer step: prompts × rollouts per prompt."""
        return self.prompts_per_step * self.num_generations


@dataclass(frozen=True)
class SftConfig:
    """SFT warm start on oracle-derived answers (teaches the format before GRPO)."""

    learning_rate: float = 1e-5
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    lr_scheduler: Scheduler = "linear"
    save_steps: int = 100

    def __post_init__(self) -> None:
        _positive(self, "sft", "per_device_batch_size", "gradient_accumulation_steps", "save_steps")
        require_setting(self.learning_rate > 0, "sft.learning_rate", "a positive number")
        require_setting(self.epochs > 0, "sft.epochs", "a positive number")
        require_setting(
            self.max_steps == -1 or self.max_steps > 0, "sft.max_steps", "-1 (use epochs) or a positive integer"
        )


@dataclass(frozen=True)
class RolloutConfig:
    """The vLLM rollout servers (`swerl-rollout`) a cluster runs beside training (infra/k8s, docs/scale-out.md)."""

    tensor_parallel_size: int = 1  # GPUs one model copy is split across
    data_parallel_size: int = 1  # model copies inside one server
    gpu_memory_utilization: float = 0.9  # share of each GPU vLLM may take (weights + KV cache)
    max_model_len: int | None = None  # None: max_prompt_length + max_completion_length

    def __post_init__(self) -> None:
        _positive(self, "rollout", "tensor_parallel_size", "data_parallel_size")
        require_setting(0 < self.gpu_memory_utilization <= 1, "rollout.gpu_memory_utilization", "a number in (0, 1]")
        if self.max_model_len is not None:
            _positive(self, "rollout", "max_model_len")

    @property
    def gpus(self) -> int:
        """GPUs one rollout server occupies."""
        return self.tensor_parallel_size * self.data_parallel_size


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe: the model, the data, the lengths, the parallel layout, and each stage."""

    name: str
    base_model: str  # a directory (absolute, or relative to SWERL_HOME or the cwd), an s3:// checkpoint, a hub id
    snapshot: str | None = None  # default snapshot id; `swerl train --snapshot` overrides it
    seed: int = 0
    max_prompt_length: int = 12288  # tokens; longer prompts are left out of the dataset (and counted)
    max_completion_length: int = 4096
    world_size: int = 1  # processes the recipe is laid out for (GPUs across all nodes)
    deepspeed: Path | None = None  # e.g. infra/deepspeed/zero3.json (relative to the cwd)
    bf16: bool = False
    gradient_checkpointing: bool = False
    gpu_memory_gib: float | None = None  # one training GPU's memory: the plan checks the recipe against it
    samples_to_log: int = 16  # rows of the sample-completions table logged to MLflow
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)

    def __post_init__(self) -> None:
        require_setting(bool(self.name.strip()) and "/" not in self.name, "name", "a non-empty name without '/'")
        require_setting(bool(self.base_model.strip()), "base_model", "a model directory or hub id")
        _positive(self, "", "max_prompt_length", "world_size")
        require_setting(self.samples_to_log >= 0, "samples_to_log", "a non-negative integer")
        require_setting(
            self.max_completion_length >= MIN_ANSWER_TOKENS,
            "max_completion_length",
            f"at least {MIN_ANSWER_TOKENS} tokens (the shortest well-formed answer cannot fit otherwise)",
        )
        if self.gpu_memory_gib is not None:
            require_setting(
                0 < self.gpu_memory_gib <= MAX_GPU_MEMORY_GIB, "gpu_memory_gib", "a number of GiB in (0, 10⁶], or null"
            )
        if self.deepspeed is not None:
            require_setting(self.deepspeed.suffix == ".json", "deepspeed", "a path to a DeepSpeed .json config")
        per_update = self.grpo.per_device_batch_size * self.world_size
        require_setting(
            self.grpo.completions_per_step % per_update == 0,
            "grpo.per_device_batch_size",
            f"a value such that per_device_batch_size × world_size ({self.grpo.per_device_batch_size} × "
            f"{self.world_size} = {per_update}) divides prompts_per_step × num_generations "
            f"({self.grpo.prompts_per_step} × {self.grpo.num_generations} = {self.grpo.completions_per_step})",
        )

    @property
    def grpo_gradient_accumulation_steps(self) -> int:
        """Micro-steps per GRPO update, derived from the batch layout."""
        return self.grpo.completions_per_step // (self.grpo.per_device_batch_size * self.world_size)


def load_train_config(recipe: Path | str) -> TrainConfig:
    """Read and validate a recipe: a file, or a shipped recipe's name (``learnable-cpu``); raises
    :class:`ConfigError` naming the offending key."""
    return train_config_from_dict(read_yaml_mapping(recipe_path(recipe), "recipe"))


def train_config_from_dict(data: Any) -> TrainConfig:
    """Validate a recipe given as a mapping (the parsed YAML); raises :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"a recipe must be a mapping of keys, got {type(data).__name__}")
    for key in ("name", "base_model"):
        if key not in data:
            raise ConfigError(f"missing setting {key}: every recipe names it")
    try:
        return build_section(TrainConfig, data, prefix="")
    except TypeError as exc:  # a section given as a scalar, or a value of the wrong shape
        raise ConfigError(f"invalid recipe: {exc}") from None


def train_config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The recipe as a plain dict (YAML/JSON-friendly), e.g. for MLflow params and the config artifact."""
    return as_dict(cfg)


def dotted(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level of dotted keys (``{"grpo": {"beta": 0.04}}`` → ``{"grpo.beta": 0.04}``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _positive(obj: object, section: str, *names: str) -> None:
    prefix = f"{section}." if section else ""
    for name in names:
        value = getattr(obj, name)
        require_setting(isinstance(value, int) and value > 0, f"{prefix}{name}", "a positive integer")
