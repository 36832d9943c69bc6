"""How large a true improvement the promotion gate detects, by held-out size and K, and what the old gate cost.

Workload: simulated pairs of models scored on the same held-out instances, with rewards shaped like
SWE-RL's: each instance has a difficulty (a similarity level drawn uniformly in [0.1, 0.8]); each sample
is a format error (−1) one time in five, else that level plus Gaussian noise (sd 0.25); the candidate's
level is raised so that its expected reward is higher by exactly the true improvement. For held-out
sizes 20/50/200 and K 1/4 it prints the smallest true improvement the gate (margin 0, alpha 0.05)
promotes at least 80 % of the time (bisection over the improvement, ``--trials`` simulated pairs per
point), and the false-promotion rate at no improvement of the gate and of the baseline it replaced
(promote when the candidate's mean ≥ the champion's mean + margin), both judging the very same pairs.

Usage: ``python benchmarks/gate.py [--trials 200] [--resamples 2000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from swerl_core.config.registry import RegistryConfig
from swerl_core.registry.gate import GateMetrics, gate

SIZES, KS = (20, 50, 200), (1, 4)
FORMAT_ERRORS = 0.2


def simulated_pair(rng: np.random.Generator, n: int, k: int, improvement: float) -> tuple[GateMetrics, GateMetrics]:
    """Candidate and champion metrics on ``n`` shared instances, K samples each."""
    level = rng.uniform(0.1, 0.8, n)
    champion = _scored(rng, level, k)
    candidate = _scored(rng, level + improvement / (1 - FORMAT_ERRORS), k)
    return candidate, champion


def _scored(rng: np.random.Generator, level: np.ndarray, k: int) -> GateMetrics:
    errors = rng.random((len(level), k)) < FORMAT_ERRORS
    rewards = np.where(errors, -1.0, level[:, None] + rng.normal(0.0, 0.25, (len(level), k)))
    table = {f"i{j:04d}": tuple(row) for j, row in enumerate(rewards)}
    return GateMetrics("sim", k, float(rewards.mean()), 0.0, "p", table)


def promotion_rate(n: int, k: int, improvement: float, trials: int, cfg: RegistryConfig, seed: int) -> float:
    """Share of ``trials`` simulated pairs the gate promotes."""
    rng = np.random.default_rng(seed)
    passed = 0
    for trial in range(trials):
        candidate, champion = simulated_pair(rng, n, k, improvement)
        passed += gate(candidate, champion, dataclasses.replace(cfg, bootstrap_seed=trial), "1").passed
    return passed / trials


def smallest_detected(n: int, k: int, trials: int, cfg: RegistryConfig, power: float = 0.8) -> tuple[float, float]:
    """Bisection for the smallest improvement promoted ``power`` of the time; returns it and its measured rate."""
    low, high = 0.0, 0.8
    rate_high = promotion_rate(n, k, high, trials, cfg, seed=n * 10 + k)
    for _ in range(8):
        mid = (low + high) / 2
        rate = promotion_rate(n, k, mid, trials, cfg, seed=n * 10 + k)
        if rate >= power:
            high, rate_high = mid, rate
        else:
            low = mid
    return high, rate_high


def false_promotions(n: int, k: int, trials: int, cfg: RegistryConfig) -> tuple[int, int, int]:
    """On ``trials`` pairs with no true improvement: (pairs judged, promoted by the gate, promoted by the baseline)."""
    rng = np.random.default_rng(1_000 + n * 10 + k)
    gate_passes = baseline_passes = 0
    for trial in range(trials):
        candidate, champion = simulated_pair(rng, n, k, 0.0)
        gate_passes += gate(candidate, champion, dataclasses.replace(cfg, bootstrap_seed=trial), "1").passed
        baseline_passes += candidate.mean_reward >= champion.mean_reward + cfg.margin
    return trials, gate_passes, baseline_passes


def main() -> None:
    """Print the detectable improvement per held-out size and K, and false promotions against the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    cfg = RegistryConfig(margin=0.0, alpha=0.05, bootstrap_resamples=args.resamples)
    print(
        f"gate: margin {cfg.margin}, alpha {cfg.alpha}, {args.resamples} bootstrap resamples, "
        f"{args.trials} simulated pairs per point; rewards: {FORMAT_ERRORS:.0%} format errors, sample noise sd 0.25"
    )
    print(f"{'held-out':>8} {'K':>2} {'detected 80%':>13} {'power':>6} {'false+ gate':>12} {'false+ old':>11} {'s':>6}")
    for n in SIZES:
        for k in KS:
            start = time.perf_counter()
            detected, rate = smallest_detected(n, k, args.trials, cfg)
            judged, gate_fp, baseline_fp = false_promotions(n, k, args.trials, cfg)
            print(
                f"{n:>8} {k:>2} {detected:>13.3f} {rate:>6.2f} {gate_fp / judged:>12.3f} {baseline_fp / judged:>11.3f} "
                f"{time.perf_counter() - start:>6.1f}"
            )
            ratio = baseline_fp / gate_fp if gate_fp else float("inf")
            slack = 2 * (cfg.alpha * (1 - cfg.alpha) / judged) ** 0.5
            print(
                f"{'':>11} same {judged} no-improvement pairs judged by both (gate within alpha ± {slack:.3f} "
                f"is sampling noise): the old gate promotes {ratio:.1f}x as often"
            )


if __name__ == "__main__":
    main()
