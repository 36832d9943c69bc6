"""Does the loop learn on every run? base → SFT → SFT+GRPO on the learnable world, over runs that differ in every
source of variation a user's machine brings.

Not a test: a measurement, and the source of the learning tests' bars. The world is built once (seed 0), served by
the fake GitHub, ingested and curated like any world (held-out: merged after the world's cutoff). Then each run, in
a fresh process, does what ``make demo`` does: the induction warm-up of the base model, the recipe's SFT warm start,
GRPO, and an evaluation of every stage on the held-out split through ``swerl_core.evaluate`` (greedy, and K samples
at the recipe's temperature: the protocol the demo's gate decides on). Runs differ in

- the seed (warm-up, SFT and GRPO data order and sampling),
- ``PYTHONHASHSEED`` (any hash-ordered iteration left in the path would show here),
- the CPU's vector instructions: odd runs set ``ATEN_CPU_CAPABILITY=avx2`` (on an AVX-512 machine this changes
  PyTorch's float arithmetic the way another CPU would; on an AVX2-only machine both halves run alike).

It prints each run, then the distribution of every stage and gain (mean ± sd, min, max), whether SFT > base and
GRPO > SFT held in every run, and the bars the tests take from it (:func:`prediction_bar`: a correct run falls
below it less than once in a thousand, for a normal spread estimated from these runs).

    .venv/bin/python benchmarks/learn.py --runs 10 [--home DIR] [--samples 4] [--jobs 1]

With ``--toy`` each run is the toy wiring check instead (``tests/test_learning_toy.py``'s path: a fresh toy
model, SFT on the toy set with its decoys, GRPO on the real fixes) and the report gives the distribution of what
that test asserts: the sampled format rate after SFT, GRPO's training reward first quarter → last, and the
share of exact answers before and after GRPO.

Runs offline; everything lands under --home (default: a temporary directory). Each run takes ~6–8 minutes on
2 cores; ``--jobs 2`` runs two at a time with one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swerl_core.config import Settings, load_settings  # noqa: E402

RECIPE = "learnable-cpu"
STAGES = ("base", "sft", "grpo")
MODES = ("greedy", "sampled")
RARE = 1e-3  # a test bar a correct run falls below at most this often


def t_quantile(p: float, df: int) -> float:
    """The upper ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on Simpson's integral)."""
    import math

    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def tail(x: float, steps: int = 4000) -> float:  # P(T > x) = 1/2 - integral of the density from 0 to x
        h = x / steps
        density = [scale * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps + 1)]
        area = h / 3 * (density[0] + density[-1] + 4 * sum(density[1:-1:2]) + 2 * sum(density[2:-1:2]))
        return 0.5 - area

    low, high = 0.0, 100.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > p else (low, mid)
    return (low + high) / 2


def prediction_bar(values: list[float]) -> float:
    """The value a new run falls below with probability :data:`RARE`, for a normal spread estimated from ``values``.

    A prediction bound: mean − t(1 − RARE, n − 1) · sd · sqrt(1 + 1/n). With the spread estimated from 10 runs this is
    the mean − 4.5 sd; the mean − 3.1 sd of a known spread would fail about 1 correct run in 125.
    """
    n = len(values)
    if n < 3:
        return float("nan")
    return statistics.fmean(values) - t_quantile(RARE, n - 1) * statistics.stdev(values) * (1 + 1 / n) ** 0.5


def settings_for(home: Path, samples: int) -> Settings:
    """The benchmark's settings: the demo's evaluation protocol (K = ``samples``) and gate, training in this process."""
    from swerl_core.stack import DEMO_EVALUATION, DEMO_GATE

    evaluation = {**DEMO_EVALUATION, "samples": samples, "lineage": False}
    overrides = {f"evaluate.{k}": v for k, v in evaluation.items()} | {f"registry.{k}": v for k, v in DEMO_GATE.items()}
    return load_settings(
        env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"},
        overrides={"train.launcher": "in_process", **overrides},
    )


def build_snapshot(home: Path, prs_per_repo: int) -> str:
    """Build, serve, ingest and curate the learnable world (the real pipeline); returns the snapshot id."""
    from swerl_core.demo.learnable import build_learnable_world, learnable_snapshot

    started = time.perf_counter()
    world = build_learnable_world(home / "world", seed=0, prs_per_repo=prs_per_repo)
    snapshot_id = learnable_snapshot(load_settings(env={"SWERL_HOME": str(home)}), world)
    print(f"world: {3 * prs_per_repo} pull requests → snapshot {snapshot_id} in {time.perf_counter() - started:.0f} s")
    return snapshot_id


def one_run(home: Path, run: int, snapshot_id: str, samples: int) -> dict[str, Any]:
    """Warm-up, SFT, GRPO and every stage's evaluation for run ``run`` (its seed); the record the parent reads."""
    from swerl_core import evaluate
    from swerl_core.demo.learnable import learnable_base_model
    from swerl_core.evaluate.predictions import sample_rewards
    from swerl_core.evaluate.uncertainty import mean_interval
    from swerl_core.package_files import recipe_path
    from swerl_core.registry.paired import compare_paired
    from swerl_core.runs import run_checkpoints
    from swerl_core.train import TrainRequest
    from swerl_core.train import run as train
    from swerl_core.train.config import load_train_config

    cfg = load_train_config(recipe_path(RECIPE))
    cfg = replace(cfg, seed=run, snapshot=snapshot_id)
    settings = settings_for(home, samples)
    record: dict[str, Any] = {"run": run, "hash_seed": os.environ.get("PYTHONHASHSEED", ""),
                              "cpu": os.environ.get("ATEN_CPU_CAPABILITY", "native")}  # fmt: skip
    clock = time.perf_counter()
    base = learnable_base_model(home / "models" / f"run-{run}", seed=run)
    record["warmup_s"], record["copy_accuracy"] = base.seconds, dict(base.copy_accuracy)
    clock = time.perf_counter()
    sft = train(
        settings, TrainRequest(cfg, "sft", snapshot_id, run_name=f"run-{run}-sft", base_model=str(base.model_dir))
    )
    record["sft_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    grpo = train(settings, TrainRequest(cfg, "grpo", snapshot_id, run_name=f"run-{run}-grpo",
                                        base_model=str(sft.model_dir)))  # fmt: skip
    record["grpo_s"] = time.perf_counter() - clock
    models = {"base": base.model_dir, "sft": sft.model_dir}
    models |= {f"grpo-{p.name.removeprefix('checkpoint-')}": p for p in run_checkpoints(grpo.checkpoint_dir)}
    clock = time.perf_counter()
    scores: dict[str, dict[str, Any]] = {}
    sampled: dict[str, Any] = {}  # model → its K rewards per held-out row, for the gate's paired decision
    for name, model in models.items():
        for mode, k in (("greedy", 1), ("sampled", samples)):
            mode_settings = replace(settings, evaluate=replace(settings.evaluate, samples=k))
            report = evaluate.run(mode_settings, evaluate.EvaluateRequest(str(model), snapshot_id))
            rewards = sample_rewards(report.predictions_path)
            mean, lower, upper = mean_interval(rewards)
            if mode == "sampled":
                sampled[name] = rewards
            m = report.metrics
            scores.setdefault(name, {})[mode] = {"mean_reward": mean, "ci90": [lower, upper],
                                                 "format_error_rate": m.format_error_rate, "apply_rate": m.apply_rate,
                                                 "exact_match_rate": m.exact_match_rate}  # fmt: skip
    record["eval_s"] = time.perf_counter() - clock
    grpo_names = [n for n in scores if n.startswith("grpo-")]
    best = max(grpo_names, key=lambda n: (scores[n]["sampled"]["mean_reward"], int(n.split("-")[1])))
    # The demo's gate: the registered (best) checkpoint paired with the SFT model it was trained from.
    paired = compare_paired(sampled[best], sampled["sft"], settings.registry.margin, settings.registry.alpha)
    decision = paired.decision  # the gate's own rule: the paired evidence, then the format-error ceiling
    if decision == "pass" and scores[best]["sampled"]["format_error_rate"] > settings.registry.format_error_ceiling:
        decision = "fail"
    gate = {"decision": decision, "lower": paired.lower, "mean": paired.mean_difference}
    record |= {"scores": scores, "grpo_best": best, "grpo_final": grpo_names[-1], "grpo_steps": grpo.steps}
    record["gate"] = gate
    return record


def one_toy_run(home: Path, run: int) -> dict[str, Any]:
    """The toy wiring check for run ``run`` (its seed), measured as ``tests/test_learning_toy.py`` measures it."""
    from mlflow import MlflowClient

    from swerl_core.demo.learnable import learnable_texts
    from swerl_core.demo.tiny_model import TOY_SPEC, init_tiny_model
    from swerl_core.demo.toy import exact_rate, format_rate, sampled_rewards, write_toy_snapshot
    from swerl_core.package_files import recipe_path
    from swerl_core.train import TrainRequest
    from swerl_core.train import run as train
    from swerl_core.train.config import load_train_config
    from swerl_core.train.snapshot import load_snapshot

    home = home / f"toy-{run}"
    settings = load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"},
                             overrides={"train.launcher": "in_process"})  # fmt: skip
    record: dict[str, Any] = {"run": run, "hash_seed": os.environ.get("PYTHONHASHSEED", ""),
                              "cpu": os.environ.get("ATEN_CPU_CAPABILITY", "native")}  # fmt: skip
    clock = time.perf_counter()
    base = init_tiny_model(home / "models" / "tiny-toy", replace(TOY_SPEC, seed=run), corpus=learnable_texts())
    snapshots = write_toy_snapshot(home)
    cfg = replace(load_train_config(recipe_path("toy-cpu")), snapshot=snapshots.grpo, seed=run)
    sft = train(settings, TrainRequest(replace(cfg, snapshot=snapshots.sft), "sft", base_model=str(base))).model_dir
    record["sft_s"] = time.perf_counter() - clock
    rows = list(load_snapshot(settings.snapshots_dir, snapshots.grpo)[0])
    temperature, budget = cfg.grpo.temperature, cfg.max_completion_length
    record["sft_format"] = format_rate(sampled_rewards(sft, rows, 2, temperature, budget))
    clock = time.perf_counter()
    grpo = train(settings, TrainRequest(cfg, "grpo", base_model=str(sft)))
    record["grpo_s"] = time.perf_counter() - clock
    history = MlflowClient(settings.tracking_uri).get_metric_history(grpo.mlflow_run_id or "", "reward")
    curve = [m.value for m in sorted(history, key=lambda m: m.step)]
    quarter = max(1, len(curve) // 4)
    record["reward_first_quarter"] = statistics.fmean(curve[:quarter])
    record["reward_last_quarter"] = statistics.fmean(curve[-quarter:])
    record["exact_after_sft"] = exact_rate(sampled_rewards(sft, rows, 8, temperature, budget))
    record["exact_after_grpo"] = exact_rate(sampled_rewards(grpo.model_dir, rows, 8, temperature, budget))
    return record


def toy_report(records: list[dict[str, Any]]) -> None:
    """Print each toy run, then the distribution of what the toy test asserts, with the bars."""
    print("\nrun  hash  cpu     SFT format  reward first→last quarter  exact SFT→GRPO  SFT/GRPO s")
    for r in records:
        print(f"{r['run']:>3}  {r['hash_seed']:>4}  {r['cpu']:<6}  {r['sft_format']:10.2f}  "
              f"{r['reward_first_quarter']:+.3f} → {r['reward_last_quarter']:+.3f}         "
              f"{r['exact_after_sft']:.2f} → {r['exact_after_grpo']:.2f}     "
              f"{r['sft_s']:.0f}/{r['grpo_s']:.0f}")  # fmt: skip
    quantities = {
        "SFT sampled format rate": [r["sft_format"] for r in records],
        "GRPO reward, last − first quarter": [r["reward_last_quarter"] - r["reward_first_quarter"] for r in records],
        "exact answers, GRPO − SFT": [r["exact_after_grpo"] - r["exact_after_sft"] for r in records],
    }
    print(f"\nover {len(records)} runs (mean ± sd [min, max]):")
    for name, values in quantities.items():
        print(f"  {name}: {describe(values)}; test bar {prediction_bar(values):+.3f}")


def spawn(home: Path, run: int, snapshot_id: str, samples: int, threads: int | None) -> subprocess.Popen[str]:
    """Run ``run`` in a fresh process with its own hash seed and vector instructions."""
    (home / f"run-{run}.json").unlink(missing_ok=True)  # an earlier measurement's record is never reported as this one
    env = {**os.environ, "PYTHONHASHSEED": str(1000 + run)}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if run % 2:
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--home", str(home), "--one-run", str(run), "--samples", str(samples)]
    cmd += ["--snapshot", snapshot_id] if snapshot_id else ["--toy"]
    log = (home / f"run-{run}.log").open("w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def stage_score(record: dict[str, Any], stage: str, mode: str, which: str = "grpo_best") -> float:
    """A run's held-out mean reward for ``stage`` (GRPO: the checkpoint ``which`` names) under ``mode``."""
    name = record[which] if stage == "grpo" else stage
    return float(record["scores"][name][mode]["mean_reward"])


def shorter_recipe_gain(record: dict[str, Any], steps: int, mode: str) -> float:
    """The sampled-best checkpoint among the first ``steps`` steps, minus SFT, under ``mode``."""
    sampled = {n: s["sampled"]["mean_reward"] for n, s in record["scores"].items()
               if n.startswith("grpo-") and int(n[5:]) <= steps}  # fmt: skip
    best = max(sampled, key=lambda n: (sampled[n], int(n[5:])))
    return float(record["scores"][best][mode]["mean_reward"]) - stage_score(record, "sft", mode)


def describe(values: list[float]) -> str:
    """``mean ± sd [min, max]`` of ``values``."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):+.3f} ± {spread:.3f}  [min {min(values):+.3f}, max {max(values):+.3f}]"


def report(records: list[dict[str, Any]]) -> None:
    """Print each run, the distribution, whether each gain held in every run, and the test bars."""
    print(
        "\nrun  hash  cpu     copy@100  base g/s        SFT g/s         GRPO(best) g/s  best      warm/SFT/GRPO/eval s"
    )
    for r in records:
        cells = "  ".join(f"{stage_score(r, s, 'greedy'):+.3f}/{stage_score(r, s, 'sampled'):+.3f}" for s in STAGES)
        times = "/".join(f"{r[k]:.0f}" for k in ("warmup_s", "sft_s", "grpo_s", "eval_s"))
        copy = float(r["copy_accuracy"].get("100", r["copy_accuracy"].get(100, 0.0)))
        print(f"{r['run']:>3}  {r['hash_seed']:>4}  {r['cpu']:<6}  {copy:8.2f}  {cells}  {r['grpo_best']:<8}  {times}")
    print(f"\nover {len(records)} runs (mean ± sd [min, max]):")
    for mode in MODES:
        for stage in STAGES:
            print(f"  {stage:<5} {mode:<8} {describe([stage_score(r, stage, mode) for r in records])}")
        final = [stage_score(r, "grpo", mode, "grpo_final") for r in records]
        print(f"  grpo final checkpoint {mode:<8} {describe(final)}")
    print()
    for mode in MODES:
        for low, high in (("base", "sft"), ("sft", "grpo")):
            gains = [stage_score(r, high, mode) - stage_score(r, low, mode) for r in records]
            every = "every run" if min(gains) > 0 else f"NOT every run ({sum(g <= 0 for g in gains)} not)"
            bar = prediction_bar(gains)
            print(f"  {low} → {high} ({mode}): {describe(gains)}; positive in {every}; test bar {bar:+.3f}")
    decisions = [r["gate"]["decision"] for r in records]
    print(
        f"\n  the demo's gate (best checkpoint paired with SFT, K samples): {decisions.count('pass')} of "
        f"{len(records)} pass; lower bound of the paired gain {describe([r['gate']['lower'] for r in records])}"
    )
    # With the recipe's constant learning rate a run of N steps is this run's first N steps, bit for bit (checked on
    # run 8: equal rewards at every step), so the best of the checkpoints up to N is what a shorter recipe registers.
    print("\n  a shorter recipe (the best checkpoint of the first N steps) − SFT:")
    steps = sorted({int(n[5:]) for r in records for n in r["scores"] if n.startswith("grpo-")})
    for last in steps:
        for mode in MODES:
            gains = [shorter_recipe_gain(r, last, mode) for r in records]
            print(f"    {last:>4} steps {mode:<8} {describe(gains)}; test bar {prediction_bar(gains):+.3f}")
    total = [sum(r[k] for k in ("warmup_s", "sft_s", "grpo_s", "eval_s")) for r in records]
    print(f"\nseconds per run (warm-up + SFT + GRPO + evaluation): {describe(total)}")


def main() -> int:
    """Build the world once, run the runs, print the distribution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="where everything lands (default: temporary)")
    parser.add_argument("--runs", type=int, default=10, help="runs, each with its own seed and hash seed")
    parser.add_argument("--first", type=int, default=0, help="the first run's number (its seed)")
    parser.add_argument("--samples", type=int, default=4, help="K sampled answers per held-out row")
    parser.add_argument("--prs-per-repo", type=int, default=800)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cores / jobs torch threads)")
    parser.add_argument("--toy", action="store_true", help="the toy wiring check's runs instead")
    parser.add_argument("--one-run", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for flag, value in (("--runs", args.runs), ("--jobs", args.jobs), ("--samples", args.samples)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, not {value}")
    if args.first < 0 or args.prs_per_repo < 2:
        parser.error("--first must be 0 or more and --prs-per-repo at least 2")
    home = (args.home or Path(tempfile.mkdtemp(prefix="swerl-learn-"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if args.one_run is not None:
        if args.toy:
            record = one_toy_run(home, args.one_run)
        else:
            record = one_run(home, args.one_run, args.snapshot, args.samples)
        (home / f"run-{args.one_run}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        return 0
    print(f"home {home}")
    snapshot_id = "" if args.toy else args.snapshot or build_snapshot(home, args.prs_per_repo)
    pending = list(range(args.first, args.first + args.runs))
    threads = max(1, (os.cpu_count() or 2) // args.jobs) if args.jobs > 1 else None
    running: list[tuple[int, subprocess.Popen[str]]] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            run = pending.pop(0)
            running.append((run, spawn(home, run, snapshot_id, args.samples, threads)))
        time.sleep(2)
        for run, child in list(running):
            if child.poll() is not None:
                running.remove((run, child))
                print(f"run {run}: exit {child.returncode} (log {home / f'run-{run}.log'})", flush=True)
    ours = [home / f"run-{run}.json" for run in range(args.first, args.first + args.runs)]
    records = [json.loads(path.read_text()) for path in ours if path.exists()]  # a failed run leaves none
    if not records:
        print("no run finished", file=sys.stderr)
        return 1
    (toy_report if args.toy else report)(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
