"""The training plan (``swerl train --plan``, and the check every launch makes first): the recipe's model built on
the meta device from its config, what one GPU must hold, and a one-line refusal for a recipe that cannot fit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from swerl_core.config import load_settings
from swerl_core.package_files import recipe_path
from swerl_core.train import TrainError, TrainRequest, make_plan
from swerl_core.train.config import load_train_config
from swerl_core.train.plan import GIB, plan_training

GIGA = 1e9
LLAMA3_8B = "meta-llama/Llama-3.1-8B-Instruct"


def _needs(made) -> dict[str, float]:  # noqa: ANN001
    return {need.what: need.bytes for need in made.training}


@pytest.mark.parametrize(("recipe", "billions"), [("llama3-8b", 8.03), ("llama3-70b", 70.55)])
def test_the_llama3_recipes_fit_their_gpus_with_the_published_parameter_counts(
    recipe: str, billions: float, tmp_path: Path
) -> None:
    made = plan_training(load_train_config(recipe_path(recipe)), "grpo", tmp_path)
    assert made.parameters / GIGA == pytest.approx(billions, abs=0.005)
    assert made.problems == () and 0 < made.per_gpu < made.gpu_memory_gib * GIB == 80 * GIB
    needs = _needs(made)
    # ZeRO-3 over the recipe's ranks: weights at 2 bytes, Adam's fp32 master copy and two states at 12, all sharded.
    ranks = made.world_size
    assert needs["weights"] == pytest.approx(2 * made.parameters / ranks)
    assert needs["optimizer (Adam)"] == pytest.approx(12 * made.parameters / ranks)
    assert "reference model" in needs and needs["activations"] > 0 and needs["logits"] > 0
    assert made.rollout and made.rollout_budget == pytest.approx(0.9 * 80 * GIB)
    text = made.render()
    assert f"{made.parameters:,}" in text and "fits" in text.splitlines()[-1]


def test_a_recipe_that_cannot_fit_is_refused_with_one_line_naming_the_memory(tmp_path: Path) -> None:
    cfg = load_train_config(recipe_path("llama3-70b"))
    zero2 = replace(cfg, deepspeed=Path("infra/deepspeed/zero2.json"))  # weights and reference model on every rank
    made = plan_training(zero2, "grpo", tmp_path)
    needs = _needs(made)
    assert needs["weights"] == pytest.approx(2 * made.parameters) and needs["gradients"] < needs["weights"] / 60
    (problem,) = made.problems
    assert "per training GPU against 80 GiB" in problem and "ZeRO-3" in problem
    assert made.refusal().startswith("recipe 'llama3-70b' cannot run (grpo): ") and "\n" not in made.refusal()
    # Offloading the optimizer to the CPU takes Adam's states off the GPU.
    offload = plan_training(replace(cfg, deepspeed=Path("infra/deepspeed/zero3_offload.json")), "grpo", tmp_path)
    assert _needs(offload)["optimizer (Adam)"] == 0 and offload.per_gpu < made.per_gpu


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"rollout": {"max_model_len": 8192}}, "below max_prompt_length + max_completion_length"),
        ({"rollout": {"tensor_parallel_size": 3}}, "does not divide the model's 8 KV heads"),
        ({"max_prompt_length": 200_000}, "exceeds the model's 131,072 positions"),
        ({"rollout": {"gpu_memory_utilization": 0.1}}, "cannot hold the weights"),
    ],
)
def test_rollouts_that_cannot_fit_the_server_are_refused(change: dict, says: str, tmp_path: Path) -> None:
    cfg = load_train_config(recipe_path("llama3-8b"))
    for key, value in change.items():
        cfg = replace(cfg, **{key: replace(getattr(cfg, key), **value) if isinstance(value, dict) else value})
    assert any(says in problem for problem in plan_training(cfg, "grpo", tmp_path).problems)


def test_colocated_vllm_takes_its_share_of_each_training_gpu(tmp_path: Path) -> None:
    cfg = load_train_config(recipe_path("llama3-8b"))
    colocated = replace(cfg, grpo=replace(cfg.grpo, vllm_mode="colocate", vllm_gpu_memory_utilization=0.4))
    made = plan_training(colocated, "grpo", tmp_path)
    assert _needs(made)["vLLM (colocated)"] == pytest.approx(0.4 * 80 * GIB)
    assert made.rollout_budget == pytest.approx(0.4 * 80 * GIB)  # the KV cache lives in that share
    assert plan_training(replace(colocated, gpu_memory_gib=40), "grpo", tmp_path).problems  # 32 GiB + training


def test_a_local_model_is_planned_from_its_config_with_its_real_parameter_count(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model

    model_dir = init_tiny_model(tmp_path / "models" / "tiny", TinyModelSpec(num_layers=1))
    real = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())
    cfg = load_train_config(recipe_path("learnable-cpu"))
    made = plan_training(cfg, "sft", tmp_path, base_model="models/tiny")  # relative: under the home
    assert made.parameters == real and made.architecture == str(model_dir / "config.json")
    assert made.gpu_memory_gib is None and made.problems == ()  # a CPU recipe: memory shown, not judged
    assert "reference model" not in _needs(made)  # SFT has none
    shown = made.render()
    assert f"parameters: {real:,} ({real / 1e6:.1f} M)" in shown and "layout: 1 training rank, " in shown, shown
    with pytest.raises(TrainError, match="no architecture for base model 'models/absent'"):
        plan_training(cfg, "sft", tmp_path, base_model="models/absent")


def test_swerl_train_plan_prints_the_plan_and_exits_1_when_it_cannot_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swerl_core.cli import main

    home = tmp_path / "home"
    home.mkdir()
    assert main(["--home", str(home), "train", "--recipe", "llama3-8b", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 8,030,261,248 (8.03 B)" in out and out.rstrip().endswith("fits")
    assert main(["--home", str(home), "train", "--recipe", "llama3-8b", "--plan", "--gpu-memory-gib", "24"]) == 1
    captured = capsys.readouterr()
    assert "does not fit:" in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("swerl train: recipe 'llama3-8b' cannot run (grpo): ") and "against 24 GiB" in line
    for bad in (["--gpu-memory-gib", "nan", "--plan"], ["--gpu-memory-gib", "24"]):
        assert main(["--home", str(home), "train", "--recipe", "llama3-8b", *bad]) != 0
        assert "--gpu-memory-gib" in capsys.readouterr().err


def test_a_launch_is_refused_before_any_process_or_pod_starts(tmp_path: Path) -> None:
    from fake_kubernetes import FakeKubernetes

    from swerl_core.train import run as train

    cfg = load_train_config(recipe_path("llama3-70b"))
    broken = replace(cfg, deepspeed=Path("infra/deepspeed/zero2.json"))
    home = tmp_path / "home"
    with FakeKubernetes() as api:
        settings = load_settings(env={}, overrides={"home": str(home), "train.launcher": "kubernetes",
            "train.kubernetes.kubeconfig": str(api.kubeconfig(tmp_path))})  # fmt: skip
        with pytest.raises(TrainError, match="cannot run .* per training GPU against 80 GiB"):
            train(settings, TrainRequest(broken, "grpo", "snap-1", run_name="too-big"))
        assert api.objects == {}, "the cluster was asked for something"
    local = load_settings(env={}, overrides={"home": str(home), "train.launcher": "local"})
    with pytest.raises(TrainError, match="cannot run"):
        train(local, TrainRequest(broken, "grpo", "snap-1", run_name="too-big"))
    assert not (home / "checkpoints" / "too-big").exists()
    # The plan the launch checked is the one `plan` returns.
    assert make_plan(local, TrainRequest(broken, "grpo")).problems


def test_the_recipe_keys_of_the_plan_are_validated(tmp_path: Path) -> None:
    from swerl_core.errors import ConfigError
    from swerl_core.train.config import train_config_from_dict

    base = {"name": "r", "base_model": "m"}
    with pytest.raises(ConfigError, match="gpu_memory_gib"):
        train_config_from_dict(base | {"gpu_memory_gib": 0})
    with pytest.raises(ConfigError, match="vllm_gpu_memory_utilization"):
        train_config_from_dict(base | {"grpo": {"vllm_gpu_memory_utilization": 1.0}})
    with pytest.raises(ConfigError, match="vllm_mode"):
        train_config_from_dict(base | {"grpo": {"vllm_mode": "remote"}})
    colocated = train_config_from_dict(base | {"grpo": {"use_vllm": True, "vllm_mode": "colocate"}})
    assert colocated.grpo.vllm_server_url is None  # colocate needs no server
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": "three"}))
    with pytest.raises(TrainError, match="cannot read it"):
        plan_training(replace(colocated, deepspeed=tmp_path / "ds.json"), "grpo", tmp_path, base_model=LLAMA3_8B)


@pytest.mark.parametrize(
    ("zero", "says"),
    [
        ({"stage": 7}, "stage is 0, 1, 2 or 3"),
        ({"stage": True}, "stage is 0, 1, 2 or 3"),
        ({"stage": 3, "stage3_max_live_parameters": float("nan")}, "stage3_max_live_parameters"),
        ({"stage": 3, "stage3_max_live_parameters": -5}, "stage3_max_live_parameters"),
    ],
)
def test_a_deepspeed_config_the_plan_cannot_trust_is_refused(zero: dict, says: str, tmp_path: Path) -> None:
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": zero}))
    cfg = replace(load_train_config(recipe_path("llama3-8b")), deepspeed=tmp_path / "ds.json")
    with pytest.raises(TrainError, match=says):
        plan_training(cfg, "grpo", tmp_path)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("{not json", "config.json cannot be read"),
        (json.dumps({}), "config.json cannot be read"),
        (json.dumps({"model_type": "t5", "d_model": 64, "num_layers": 1, "num_heads": 2}), "cannot build a causal LM"),
        (json.dumps({"model_type": "llama", "num_attention_heads": 0}), "config.json cannot be read"),
    ],
)
def test_a_model_folder_the_plan_cannot_read_is_one_refusal_line(
    config: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swerl_core.cli import main

    (tmp_path / "models" / "odd").mkdir(parents=True)
    (tmp_path / "models" / "odd" / "config.json").write_text(config)
    args = ["--home", str(tmp_path), "train", "--recipe", "learnable-cpu", "--model", "models/odd", "--plan"]
    assert main(args) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert says in line and "unexpected error" not in line, line
    assert main([*args, "--gpu-memory-gib", "inf"]) != 0 and "(0, 10⁶]" in capsys.readouterr().err
