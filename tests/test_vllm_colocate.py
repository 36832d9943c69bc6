"""GRPO with its rollouts from a vLLM engine inside the training process (``grpo.use_vllm: true``,
``grpo.vllm_mode: colocate``), through ``swerl train`` as a user runs it, on the learnable world's model shape.

One run for the module (the engine takes most of a minute to start on 2 cores), under DeepSpeed ZeRO-3, so every
weight sync gathers the full weights from their partitions. It must leave what a run with transformers generation
leaves — checkpoints, per-step metrics, the reward curve, an MLflow run — and the tokens of every step must come
from the engine: ``vllm/generated_tokens`` is counted from vLLM's own outputs, and it has to account for every
completion token TRL trained on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from vllm_recipes import vllm_recipe

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID

pytestmark = [pytest.mark.slow, pytest.mark.heavy(120)]

REPO = Path(__file__).resolve().parent.parent
STEPS = 2
PROMPTS_PER_STEP = 2
GENERATIONS = 4


@dataclass(frozen=True)
class ColocatedRun:
    """One finished ``swerl train`` GRPO run with colocated vLLM rollouts."""

    settings: Settings
    run_dir: Path
    output: str
    returncode: int


def _recipe(model_dir: Path, **grpo: object) -> dict:
    return vllm_recipe("colocate", model_dir, STEPS, PROMPTS_PER_STEP, GENERATIONS, vllm_mode="colocate", **grpo)


def _train(home: Path, recipe: dict, *args: str) -> subprocess.CompletedProcess[str]:
    path = home / f"{recipe['name']}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", "train", "--recipe", str(path), *args],
        cwd=REPO,
        env={**os.environ, "SWERL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def learnable_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init model of the learnable world's shape (head size 32, which vLLM's CPU kernels take)."""
    from swerl_core.demo.tiny_model import LEARNABLE_SPEC, init_tiny_model

    return init_tiny_model(tmp_path_factory.mktemp("models") / "learnable-shape", LEARNABLE_SPEC)


@pytest.fixture(scope="module")
def colocated(learnable_shape: Path, tmp_path_factory: pytest.TempPathFactory) -> ColocatedRun:
    from swerl_core.config import load_settings
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    home = tmp_path_factory.mktemp("colocate-home")
    write_sample_snapshot(home)
    settings = load_settings(env={"SWERL_HOME": str(home)})
    done = _train(
        home, _recipe(learnable_shape), "--run-name", "colocated", "--deepspeed", "infra/deepspeed/zero3.json"
    )
    return ColocatedRun(settings, settings.checkpoints_dir / "colocated", done.stdout + done.stderr, done.returncode)


def test_a_colocated_run_finishes_with_a_checkpoint_per_step(colocated: ColocatedRun) -> None:
    assert colocated.returncode == 0, colocated.output[-4000:]
    for step in range(1, STEPS + 1):
        state = json.loads((colocated.run_dir / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert state["global_step"] == step
        assert (colocated.run_dir / f"checkpoint-{step}" / f"global_step{step}").is_dir(), "no DeepSpeed state"
    assert (colocated.run_dir / "final" / "model.safetensors").is_file()


def test_the_engine_samples_from_the_trainers_weights_at_every_step(colocated: ColocatedRun) -> None:
    from mlflow import MlflowClient

    # A sync before every step's rollouts, the first included, writes the weights gathered from the ZeRO-3
    # partitions into the engine; TRL scores the sampled tokens with the trainer's own weights. Weights gathered
    # wrong (empty, stale, another layer's) put the two log-probabilities far apart.
    assert colocated.returncode == 0, colocated.output[-4000:]
    client = MlflowClient(colocated.settings.tracking_uri)
    run_id = (colocated.run_dir / "mlflow_run_id").read_text().strip()
    gaps = {m.step: m.value for m in client.get_metric_history(run_id, "sampling/sampling_logp_difference/max")}
    assert sorted(gaps) == list(range(1, STEPS + 1)) and all(gap < 0.05 for gap in gaps.values()), gaps


def test_every_completion_token_came_from_the_vllm_engine(colocated: ColocatedRun) -> None:
    from mlflow import MlflowClient

    assert colocated.returncode == 0, colocated.output[-4000:]
    client = MlflowClient(colocated.settings.tracking_uri)
    run_id = (colocated.run_dir / "mlflow_run_id").read_text().strip()
    engine = {m.step: m.value for m in client.get_metric_history(run_id, "vllm/generated_tokens")}
    lengths = {m.step: m.value for m in client.get_metric_history(run_id, "completions/mean_length")}
    assert sorted(engine) == list(range(1, STEPS + 1)), engine
    for step, tokens in engine.items():
        # TRL's mean completion length over the step's completions, times their number: the tokens it trained on.
        assert tokens == pytest.approx(lengths[step] * PROMPTS_PER_STEP * GENERATIONS, abs=0.5), (step, engine, lengths)
        assert tokens > 0


def test_a_colocated_run_is_tracked_like_any_grpo_run(colocated: ColocatedRun) -> None:
    from mlflow import MlflowClient

    assert colocated.returncode == 0, colocated.output[-4000:]
    client = MlflowClient(colocated.settings.tracking_uri)
    run = client.get_run((colocated.run_dir / "mlflow_run_id").read_text().strip())
    assert run.info.status == "FINISHED"
    assert (run.data.params["grpo.use_vllm"], run.data.params["grpo.vllm_mode"]) == ("True", "colocate")
    for name in ("reward", "format_error_rate", "loss", "generation_time_s"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == list(range(1, STEPS + 1)), name
    assert {"reward_curve.png", "samples.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    rewards = [m.value for m in client.get_metric_history(run.info.run_id, "reward")]
    assert all(-1.0 <= r <= 1.0 for r in rewards), rewards


def test_a_head_size_the_cpu_engine_cannot_take_is_refused_before_training(tmp_path: Path) -> None:
    from swerl_core.demo.sample_snapshot import write_sample_snapshot
    from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model

    narrow = init_tiny_model(tmp_path / "narrow", replace(TinyModelSpec(), hidden_size=64, num_heads=4, num_kv_heads=2))
    write_sample_snapshot(tmp_path)
    done = _train(tmp_path, {**_recipe(narrow), "name": "narrow"})
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("swerl train: grpo.vllm_mode: colocate: vLLM on a CPU takes attention head sizes 32,")
    assert lines[-1].endswith("has 16"), lines[-1]
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_a_weight_sync_puts_the_trainers_weights_into_the_engine(learnable_shape: Path, tmp_path: Path) -> None:
    # GRPO on a random model learns nothing (every answer scores −1, every advantage is 0), so a training run cannot
    # tell a working sync from a missing one. The trainer swerl builds is probed directly instead, in a process of
    # its own (vLLM needs a __main__): the policy's weights are moved, and the engine must follow after one sync.
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    write_sample_snapshot(tmp_path)
    probe = subprocess.run(
        [sys.executable, __file__, str(learnable_shape), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    gaps = json.loads(probe.stdout.strip().splitlines()[-1])
    assert gaps["synced"] < 0.05, gaps  # the same weights: kernels' rounding only
    assert gaps["moved"] > 1.0, gaps  # the policy moved and the engine has not been told: the probe sees it
    assert gaps["after_sync"] < 0.05, gaps


def _probe_sync(model_dir: Path, home: Path) -> dict[str, float]:
    """How far the engine's log-probabilities are from the policy's on the engine's greedy answer to a prompt:
    at the start, after moving the policy's weights, and after a sync."""
    import torch
    from vllm import SamplingParams

    from swerl_core.config import load_settings
    from swerl_core.train.config import train_config_from_dict
    from swerl_core.train.examples import grpo_examples
    from swerl_core.train.reward_fn import SweRLReward
    from swerl_core.train.snapshot import load_snapshot
    from swerl_core.train.stages import build_grpo_trainer
    from swerl_core.train.trainer import load_tokenizer
    from swerl_core.train.trl_args import grpo_args
    from swerl_core.vllm_engine import prepare_vllm

    settings = load_settings(env={"SWERL_HOME": str(home)})
    cfg = train_config_from_dict(_recipe(model_dir))
    prepare_vllm(model_dir, on_gpu=False, purpose="the probe")
    tokenizer = load_tokenizer(str(model_dir), home)
    rows, _ = load_snapshot(settings.snapshots_dir, SAMPLE_SNAPSHOT_ID)
    dataset = grpo_examples(rows, tokenizer, cfg.max_prompt_length).dataset
    reward = SweRLReward(workers=1, samples_to_keep=0, order_log=home / "order.jsonl")
    trainer = build_grpo_trainer(str(model_dir), tokenizer, grpo_args(cfg, home / "run"), dataset, reward, [])
    policy = trainer.model.eval()
    prompt = tokenizer.apply_chat_template(dataset[0]["prompt"], add_generation_prompt=True)["input_ids"]

    def gap() -> float:
        greedy = SamplingParams(temperature=0.0, max_tokens=16, logprobs=0)
        answer = trainer.vllm_generation.llm.generate([{"prompt_token_ids": prompt}], greedy, use_tqdm=False)[0]
        tokens, steps = list(answer.outputs[0].token_ids), answer.outputs[0].logprobs
        engine = torch.tensor([step[token].logprob for token, step in zip(tokens, steps, strict=True)])
        with torch.no_grad():
            logits = policy(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1 : -1]
        own = torch.log_softmax(logits.float(), dim=-1).gather(1, torch.tensor(tokens)[:, None])[:, 0]
        return float((engine - own).abs().max())

    synced = gap()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    moved = gap()
    trainer.vllm_generation.sync_weights()
    return {"synced": synced, "moved": moved, "after_sync": gap()}


if __name__ == "__main__":
    print(json.dumps(_probe_sync(Path(sys.argv[1]), Path(sys.argv[2]))))
