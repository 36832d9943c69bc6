"""Recipe validation: every mistake is rejected with a message naming the key; shipped recipes load."""

from __future__ import annotations

from pathlib import Path

import pytest

from swerl_core.config import ConfigError
from swerl_core.train.config import MIN_ANSWER_TOKENS, load_train_config, train_config_from_dict

CONFIGS = Path(__file__).resolve().parent.parent / "deployments" / "configs"


def _recipe(**overrides: object) -> dict:
    recipe: dict = {
        "name": "t",
        "base_model": "models/tiny",
        "grpo": {"prompts_per_step": 2, "num_generations": 4, "per_device_batch_size": 8},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            recipe.setdefault(key, {}).update(value)
        else:
            recipe[key] = value
    return recipe


def test_valid_recipe_derives_gradient_accumulation() -> None:
    cfg = train_config_from_dict(_recipe(world_size=2, grpo={"per_device_batch_size": 2}))
    assert cfg.grpo.completions_per_step == 8
    assert cfg.grpo_gradient_accumulation_steps == 2, "8 completions / (2 per device × 2 processes)"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"grpo": {"typo_key": 1}}, "grpo.typo_key"),
        ({"learning_rate": 1e-5}, "learning_rate"),
        ({"grpo": {"per_device_batch_size": 3}}, "grpo.per_device_batch_size"),
        ({"world_size": 3}, "grpo.per_device_batch_size"),
        ({"grpo": {"num_generations": 1}}, "grpo.num_generations"),
        ({"grpo": {"loss_type": "ppo"}}, "grpo.loss_type"),
        ({"grpo": {"scale_rewards": "std"}}, "grpo.scale_rewards"),
        ({"grpo": {"epsilon_high": 0.1}}, "grpo.epsilon_high"),
        ({"grpo": {"beta": -0.1}}, "grpo.beta"),
        ({"grpo": {"temperature": 0}}, "grpo.temperature"),
        ({"grpo": {"use_vllm": True}}, "grpo.vllm_server_url"),
        ({"grpo": {"vllm_weight_sync": "gloo"}}, "grpo.vllm_weight_sync"),
        ({"grpo": {"vllm_request_timeout_s": 0}}, "grpo.vllm_request_timeout_s"),
        ({"grpo": {"vllm_request_timeout_s": float("nan")}}, "grpo.vllm_request_timeout_s"),
        ({"grpo": {"vllm_server_timeout_s": float("inf")}}, "grpo.vllm_server_timeout_s"),
        ({"grpo": {"vllm_weights_dir": " "}}, "grpo.vllm_weights_dir"),
        ({"grpo": {"learning_rate": "fast"}}, "grpo.learning_rate"),
        ({"max_completion_length": MIN_ANSWER_TOKENS - 1}, "max_completion_length"),
        ({"max_prompt_length": 0}, "max_prompt_length"),
        ({"deepspeed": "infra/deepspeed/zero2.yaml"}, "deepspeed"),
        ({"sft": {"epochs": 0}}, "sft.epochs"),
    ],
)
def test_bad_recipe_names_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config_from_dict(_recipe(**overrides))
    assert key in str(info.value), f"error {info.value!r} does not name {key}"


def test_missing_base_model_is_named() -> None:
    with pytest.raises(ConfigError, match="base_model"):
        train_config_from_dict({"name": "t"})


def test_yaml_floats_written_without_dot_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: t\nbase_model: m\ngrpo:\n  learning_rate: 1e-6\n  epsilon_high: 0.28\n", encoding="utf-8")
    cfg = load_train_config(path)
    assert cfg.grpo.learning_rate == 1e-6 and cfg.grpo.epsilon_high == 0.28


@pytest.mark.parametrize("name", ["demo-cpu", "llama3-8b", "llama3-70b"])
def test_shipped_recipe_loads(name: str) -> None:
    cfg = load_train_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    if name != "demo-cpu":
        assert (cfg.grpo.prompts_per_step, cfg.grpo.num_generations) == (32, 16), "paper: 32 prompts × 16 rollouts"
        assert cfg.max_prompt_length + cfg.max_completion_length == 16384, "paper: 16k context"
        assert cfg.grpo.temperature == 1.0 and cfg.grpo.loss_type == "grpo" and cfg.grpo.beta > 0
        assert cfg.deepspeed is not None and (CONFIGS.parent.parent / cfg.deepspeed).is_file()
