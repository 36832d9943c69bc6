"""How sure an evaluation is: the bootstrap interval of a mean reward over held-out instances. Pure numpy, no I/O.

An evaluation scores K samples on each of n instances; instances, not samples, are the unit that a fresh set of
pull requests would redraw, so intervals resample instances (each counted by the mean of its K rewards). The
registry's paired gate (:mod:`swerl_core.registry.paired`) builds its comparison on the same resampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from swerl_core.evaluate.predictions import sample_rewards

Rewards = Mapping[str, Sequence[float]]  # instance id -> its K sample rewards


def instance_means(rewards: Rewards) -> dict[str, float]:
    """Each instance's mean reward over its samples."""
    return {key: float(np.mean(values)) for key, values in rewards.items() if len(values)}


def bootstrap_interval(
    diffs: np.ndarray, alpha: float, rng: np.random.Generator, resamples: int
) -> tuple[float, float]:
    """Percentile interval (``alpha`` in each tail) of the mean of ``diffs``, resampling instances."""
    n = len(diffs)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(n, 1))  # bound memory: resample in blocks of about 2M draws
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = diffs[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def mean_interval(
    rewards: Rewards, confidence: float = 0.9, *, seed: int = 0, resamples: int = 4000
) -> tuple[float, float, float]:
    """The mean reward over instances (each the mean of its K samples) and its ``confidence`` bootstrap interval,
    resampling instances: ``(mean, lower, upper)``."""
    if not rewards:
        raise ValueError("no per-instance rewards")
    means = np.array(list(instance_means(rewards).values()), dtype=float)
    lower, upper = bootstrap_interval(means, (1 - confidence) / 2, np.random.default_rng(seed), resamples)
    return float(means.mean()), lower, upper


def report_interval(predictions_path: Path, confidence: float = 0.9) -> tuple[float, float, float] | None:
    """:func:`mean_interval` of the evaluation whose predictions file is ``predictions_path``; ``None`` when the file
    is gone or holds no rewards (an evaluation recorded before per-sample rewards were kept)."""
    rewards = sample_rewards(predictions_path)
    return mean_interval(rewards, confidence) if rewards else None
