"""Training end to end on the tiny model (CPU), the trainer in this process (``train.launcher: in_process``, what
``swerl train`` and every launched rank run): GRPO with and without DeepSpeed ZeRO-2, SFT, and resume after
kill -9 — each leaves checkpoints and an MLflow run with per-step metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
from swerl_core.train import TrainRequest, in_this_process, run
from swerl_core.train.config import TrainConfig, train_config_from_dict
from swerl_core.train.trainer import ORDER_LOG

pytestmark = pytest.mark.heavy(130)  # seconds in make test: started first (tests/conftest.py)

REPO = Path(__file__).resolve().parent.parent
STEP_METRICS = (
    "reward",
    "reward_std",
    "format_error_rate",
    "frac_reward_zero_std",
    "kl",
    "loss",
    "generation_time_s",
    "reward_time_s",
    "tokens_per_s",
    "entropy",
    "learning_rate",
    "completions/mean_length",
    "completions/clipped_ratio",  # share of completions cut at max_completion_length
    "clip_ratio/region_mean",
)


def _recipe(model_dir: Path, top: dict | None = None, **grpo: object) -> dict:
    recipe = {
        "name": "test",
        "base_model": str(model_dir),
        "snapshot": SAMPLE_SNAPSHOT_ID,
        "seed": 3,
        "max_prompt_length": 1024,
        "max_completion_length": 48,
        "samples_to_log": 4,
        "grpo": {
            "prompts_per_step": 2,
            "num_generations": 2,
            "per_device_batch_size": 4,
            "max_steps": 2,
            "save_steps": 1,
            "beta": 0.04,
            "learning_rate": 1e-4,
            **grpo,
        },
        "sft": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "save_steps": 1},
    }
    return {**recipe, **(top or {})}


def _config(model_dir: Path, top: dict | None = None, **grpo: object) -> TrainConfig:
    return train_config_from_dict(_recipe(model_dir, top, **grpo))


def _cli(home: Path, recipe: dict, *args: str, python: tuple[str, ...] = ()) -> subprocess.Popen:
    path = home / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    env = {**os.environ, "SWERL_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, *python, "-m", "swerl_core.cli", "train", "--recipe", str(path), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _assert_tracked(settings: Settings, run_id: str, steps: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for name in STEP_METRICS:
        history = client.get_metric_history(run_id, name)
        assert [m.step for m in history] == list(range(1, steps + 1)), f"metric {name}: steps {history}"
    for param in ("snapshot_id", "git_sha", "grpo.num_generations", "base_model", "stage"):
        assert param in run.data.params, f"param {param} missing"
    assert run.data.params["snapshot_id"] == SAMPLE_SNAPSHOT_ID
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.json", "reward_curve.png", "samples.json"} <= artifacts, artifacts


def _assert_checkpoints(run_dir: Path, steps: int) -> None:
    from safetensors.torch import load_file
    from transformers import AutoConfig

    for step in range(1, steps + 1):
        state = json.loads((run_dir / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert state["global_step"] == step
        assert (run_dir / f"checkpoint-{step}" / "model.safetensors").is_file()
    assert (run_dir / "final" / "tokenizer.json").is_file()
    # Consolidated weights (under ZeRO-3 too): the full embedding, not a partition or a placeholder.
    config = AutoConfig.from_pretrained(run_dir / "final")
    weights = load_file(run_dir / "final" / "model.safetensors")
    assert tuple(weights["model.embed_tokens.weight"].shape) == (config.vocab_size, config.hidden_size)


def _order(run_dir: Path) -> dict[int, list[str]]:
    order: dict[int, list[str]] = {}
    for line in (run_dir / ORDER_LOG).read_text().splitlines():
        record = json.loads(line)
        order[record["step"]] = record["instance_ids"]  # a step redone after a resume replaces its first try
    return order


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings, training in this process."""
    return in_this_process(settings)


@pytest.mark.slow
def test_two_grpo_steps_write_checkpoints_and_mlflow_metrics(settings: Settings, model_dir: Path) -> None:
    result = run(settings, TrainRequest(_config(model_dir), stage="grpo", run_name="plain"))
    assert result.steps == 2 and result.stage == "grpo"
    assert result.model_dir == settings.checkpoints_dir / "plain" / "final"
    _assert_checkpoints(result.checkpoint_dir, 2)
    _assert_tracked(settings, result.mlflow_run_id or "", 2)
    assert -1.0 <= result.metrics["reward"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_two_grpo_steps_on_deepspeed_single_process(settings: Settings, model_dir: Path, zero: str) -> None:
    # A subprocess, as a user runs it: DeepSpeed's process group and env must not leak into other tests.
    deepspeed = ("--deepspeed", f"infra/deepspeed/{zero}.json")
    proc = _cli(settings.home, _recipe(model_dir), *deepspeed, "--run-name", zero, python=("-X", "importtime"))
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output[-3000:]
    # vLLM is installed, and TRL imports it with its GRPO trainer; a recipe without vLLM rollouts leaves it alone.
    imported = [line.rsplit("|", 1)[-1].strip() for line in output.splitlines() if line.startswith("import time:")]
    assert "trl.generation.vllm_generation" in imported  # where TRL imports vLLM if it can
    assert not [name for name in imported if name == "vllm" or name.startswith("vllm.")]
    run_dir = settings.checkpoints_dir / zero
    assert (run_dir / "checkpoint-2" / "global_step2").is_dir(), "DeepSpeed state missing from the checkpoint"
    _assert_checkpoints(run_dir, 2)
    _assert_tracked(settings, (run_dir / "mlflow_run_id").read_text().strip(), 2)


@pytest.mark.slow
def test_resume_after_kill_continues_same_step_and_data_order(settings: Settings, model_dir: Path) -> None:
    steps = 6
    reference = run(settings, TrainRequest(_config(model_dir, max_steps=steps), run_name="reference"))
    proc = _cli(settings.home, _recipe(model_dir, max_steps=steps), "--run-name", "killed")
    run_dir = settings.checkpoints_dir / "killed"
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, f"training exited early: {proc.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint-2 within 300 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (run_dir / "final").exists(), "the run finished before it could be killed"

    resumed = run(settings, TrainRequest(_config(model_dir, max_steps=steps), resume=True, run_name="killed"))
    assert resumed.run_name == "killed" and len(resumed.resumed_from_steps) == 1 and resumed.restarts == 0
    assert resumed.resumed_from_steps[0] >= 2 and resumed.steps == steps
    assert _order(run_dir) == _order(reference.checkpoint_dir), "resumed run saw other rows than an unbroken run"
    state = json.loads((run_dir / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == steps
    assert resumed.mlflow_run_id == (run_dir / "mlflow_run_id").read_text().strip()


@pytest.mark.slow
def test_sft_stage_trains_on_oracle_answers(settings: Settings, model_dir: Path) -> None:
    from mlflow import MlflowClient

    # An oracle answer is about 100 tokens: SFT needs a completion budget that holds it.
    result = run(
        settings, TrainRequest(_config(model_dir, {"max_completion_length": 256}), stage="sft", run_name="sft")
    )
    assert result.steps == 2 and (result.model_dir / "model.safetensors").is_file()
    losses = MlflowClient(settings.tracking_uri).get_metric_history(result.mlflow_run_id or "", "loss")
    assert [m.step for m in losses] == [1, 2] and all(m.value > 0 for m in losses)
