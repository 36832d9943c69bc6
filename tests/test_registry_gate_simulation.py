"""The gate on simulated models with a known true improvement: at no real improvement beyond the margin it
promotes at most about alpha of the time over many seeds, and it does detect a real improvement (its power)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from swerl_core.config.registry import RegistryConfig
from swerl_core.registry.gate import GateMetrics, gate

SEEDS = 1500


def _samples(rng: np.random.Generator, quality: np.ndarray, k: int) -> list[tuple[float, ...]]:
    """Rewards shaped like SWE-RL's: a format error (−1) one time in five, else a noisy similarity."""
    errors = rng.random((len(quality), k)) < 0.2
    similarity = quality[:, None] + rng.normal(0.0, 0.25, (len(quality), k))
    return [tuple(row) for row in np.where(errors, -1.0, similarity)]


def _metrics(table: list[tuple[float, ...]], k: int) -> GateMetrics:
    rewards = {f"i{j:03d}": row for j, row in enumerate(table)}
    return GateMetrics("sim", k, float(np.mean(table)), 0.0, "p", rewards)


def _promotion_rate(improvement: float, margin: float, n: int, k: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    cfg = RegistryConfig(margin=margin, alpha=0.05, bootstrap_resamples=500)
    promoted = 0
    for trial in range(SEEDS):
        quality = rng.uniform(0.1, 0.8, n)
        champion = _metrics(_samples(rng, quality, k), k)
        # Four samples in five are not format errors, so this shifts the expected reward by exactly `improvement`.
        candidate = _metrics(_samples(rng, quality + improvement / 0.8, k), k)
        promoted += gate(candidate, champion, dataclasses.replace(cfg, bootstrap_seed=trial)).passed
    return promoted / SEEDS


def _binomial_slack(rate: float) -> float:
    return 2 * math.sqrt(rate * (1 - rate) / SEEDS)


def test_false_promotion_rate_at_the_margin_stays_within_alpha() -> None:
    # The worst case for the gate: the candidate is better by exactly the margin, not more.
    for n, k, margin in ((20, 1, 0.0), (20, 4, 0.05)):
        rate = _promotion_rate(margin, margin, n, k, seed=n + k)
        print(f"false promotions at the margin (n={n}, K={k}, margin {margin}): {rate:.3f}")
        assert rate <= 0.05 + _binomial_slack(0.05), f"n={n} K={k} margin={margin}: false promotions {rate:.3f}"


def test_a_worse_or_equal_candidate_is_promoted_less_often_than_alpha() -> None:
    rate = _promotion_rate(-0.05, 0.0, 20, 1, seed=11)
    assert rate < 0.05, f"false promotions of a worse candidate {rate:.3f}"


def test_power_against_a_real_improvement_is_reported_and_high() -> None:
    power = _promotion_rate(0.25, 0.0, 50, 4, seed=5)
    print(f"power at a true improvement of 0.25 (n=50, K=4, alpha 0.05): {power:.3f}")
    assert power >= 0.8, f"power {power:.3f}"
