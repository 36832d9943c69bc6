"""Rollouts from a colocated vLLM engine against transformers generation: the same GRPO steps, recipe and seed.

Workload: the toy set (``deployments/configs/toy-cpu.yaml``, docs/training.md "the toy set"): its SFT stage
once, then ``--steps`` GRPO steps from that model twice, with ``grpo.use_vllm`` off (transformers generation in the
trainer, the baseline) and on (``vllm_mode: colocate``). After SFT the model answers with the real fix or a decoy
about half the time, so the rewards spread and GRPO has something to follow: both runs should reach the same range.

Prints, per generator: seconds per step (the median gap between logged steps, so the engine's start-up is shown
apart), generation seconds per step, rollout tokens per second (completion tokens over generation time), the
reward of the first and last steps, then the ratios vLLM / transformers.

Usage: ``python benchmarks/rollout.py [--steps 8] [--seed 0]`` (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from swerl_core.config import Settings, load_settings
from swerl_core.demo.learnable import learnable_texts
from swerl_core.demo.tiny_model import TOY_SPEC, init_tiny_model
from swerl_core.demo.toy import write_toy_snapshot
from swerl_core.package_files import recipe_path
from swerl_core.train import TrainRequest, in_this_process, run
from swerl_core.train.config import TrainConfig, load_train_config


@dataclass(frozen=True)
class Rollouts:
    """One generator's GRPO run, read back from its MLflow run."""

    name: str
    wall_s: float
    step_s: float
    generation_s: float
    tokens_per_s: float
    rewards: list[float]


def grpo(settings: Settings, cfg: TrainConfig, sft: Path, name: str, use_vllm: bool) -> Rollouts:
    """Run the recipe's GRPO from ``sft`` with or without colocated vLLM and summarise its per-step metrics."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    grpo_cfg = replace(cfg.grpo, use_vllm=use_vllm, vllm_mode="colocate")
    started = time.perf_counter()
    result = run(settings, TrainRequest(replace(cfg, grpo=grpo_cfg), "grpo", base_model=str(sft), run_name=name))
    wall = time.perf_counter() - started
    client = MlflowClient(settings.tracking_uri)

    def history(metric: str) -> list[float]:
        records: list[Metric] = client.get_metric_history(result.mlflow_run_id or "", metric)
        return [m.value for m in sorted(records, key=lambda m: m.step)]

    stamps = sorted(m.timestamp for m in client.get_metric_history(result.mlflow_run_id or "", "reward"))
    completions = cfg.grpo.prompts_per_step * cfg.grpo.num_generations
    generation = history("generation_time_s")
    tokens = [length * completions for length in history("completions/mean_length")]
    return Rollouts(
        name=name,
        wall_s=wall,
        step_s=statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)) / 1000,
        generation_s=statistics.mean(generation),
        tokens_per_s=sum(tokens) / sum(generation),
        rewards=history("reward"),
    )


def show(runs: list[Rollouts]) -> None:
    """Print one row per generator and the ratios of the second to the first."""
    print(f"{'generator':<14}{'wall s':>8}{'s/step':>8}{'gen s/step':>11}{'rollout tok/s':>15}  reward first → last")
    for r in runs:
        half = max(1, len(r.rewards) // 2)
        first, last = statistics.mean(r.rewards[:half]), statistics.mean(r.rewards[-half:])
        print(
            f"{r.name:<14}{r.wall_s:>8.1f}{r.step_s:>8.2f}{r.generation_s:>11.2f}{r.tokens_per_s:>15.0f}"
            f"  {first:+.3f} → {last:+.3f}  (steps: {', '.join(f'{x:+.2f}' for x in r.rewards)})"
        )
    base, other = runs
    print(
        f"ratio {other.name}/{base.name}: s/step {other.step_s / base.step_s:.2f}, generation s/step "
        f"{other.generation_s / base.generation_s:.2f}, rollout tok/s {other.tokens_per_s / base.tokens_per_s:.2f}, "
        f"wall (engine start included) {other.wall_s / base.wall_s:.2f}"
    )


def main() -> None:
    """SFT the toy model once, then the same GRPO steps with each generator."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="GRPO steps per generator (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swerl-rollout-bench-") as tmp:
        home = Path(tmp)
        settings = in_this_process(load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"}))
        spec = replace(TOY_SPEC, seed=args.seed)
        base = init_tiny_model(home / "models" / "tiny-toy", spec, corpus=learnable_texts())
        snapshots = write_toy_snapshot(home)
        cfg = replace(load_train_config(recipe_path("toy-cpu")), seed=args.seed, snapshot=snapshots.grpo)
        cfg = replace(cfg, grpo=replace(cfg.grpo, max_steps=args.steps))
        started = time.perf_counter()
        sft = run(settings, TrainRequest(replace(cfg, snapshot=snapshots.sft), "sft", base_model=str(base))).model_dir
        print(
            f"toy SFT: {time.perf_counter() - started:.0f} s; GRPO {args.steps} steps × "
            f"{cfg.grpo.prompts_per_step * cfg.grpo.num_generations} completions, seed {args.seed}"
        )
        show([grpo(settings, cfg, sft, "transformers", False), grpo(settings, cfg, sft, "vllm-colocate", True)])


if __name__ == "__main__":
    main()
