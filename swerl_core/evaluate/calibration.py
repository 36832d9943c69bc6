"""How well the similarity reward predicts that an answer resolves its instance: pure functions, no I/O.

Given pairs (reward, resolved) over every sample of a checkpoint's evaluation: the ROC AUC of the reward as a
score for "resolved" (the probability that a resolved sample outranks an unresolved one, ties counting half: the
Mann-Whitney statistic), Spearman's rank correlation between reward and resolved (average ranks for ties), and the
reliability table: samples split into reward deciles (equal counts, ties kept together), each with its mean reward
and resolved rate. A measure that one class alone cannot define (no resolved sample, or no unresolved one; a
constant reward) is None, never a made-up 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ReliabilityBin:
    """One reward bin of the reliability table."""

    low: float
    high: float
    count: int
    mean_reward: float
    resolved_rate: float


@dataclass(frozen=True)
class Calibration:
    """The reward's calibration against execution over ``count`` samples."""

    count: int
    resolved_rate: float | None  # None over no sample
    roc_auc: float | None
    spearman: float | None
    reliability: tuple[ReliabilityBin, ...]


def calibration(rewards: Sequence[float], resolved: Sequence[bool], bins: int = 10) -> Calibration:
    """The calibration of ``rewards`` against ``resolved`` (same length, one pair per sample). Raises
    :class:`ValueError` when a reward is NaN (it has no rank: every measure would depend on the samples' order)."""
    if len(rewards) != len(resolved):
        raise ValueError(f"{len(rewards)} rewards but {len(resolved)} resolved flags")
    nans = sum(1 for reward in rewards if math.isnan(reward))
    if nans:
        raise ValueError(f"{nans} of {len(rewards)} rewards are NaN")
    count = len(rewards)
    return Calibration(
        count=count,
        resolved_rate=sum(resolved) / count if count else None,
        roc_auc=roc_auc(rewards, resolved),
        spearman=spearman(rewards, [1.0 if r else 0.0 for r in resolved]),
        reliability=reliability(rewards, resolved, bins),
    )


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """P(score of a positive > score of a negative) + ½ P(equal); None without both classes or with a constant
    score (it ranks nothing)."""
    positives = sum(positive)
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0 or len(set(scores)) < 2:
        return None
    ranks = average_ranks(scores)
    rank_sum = sum(rank for rank, is_positive in zip(ranks, positive, strict=True) if is_positive)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on average ranks); None when either side is constant."""
    rx, ry = average_ranks(xs), average_ranks(ys)
    n = len(rx)
    if n < 2:
        return None
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def reliability(rewards: Sequence[float], resolved: Sequence[bool], bins: int = 10) -> tuple[ReliabilityBin, ...]:
    """Samples sorted by reward and cut into ``bins`` groups of (nearly) equal size, never splitting equal
    rewards; each group's reward range, size, mean reward and resolved rate. Empty groups are left out."""
    pairs = sorted(zip(rewards, resolved, strict=True), key=lambda pair: pair[0])
    groups: list[list[tuple[float, bool]]] = []
    for index, pair in enumerate(pairs):
        target = index * bins // len(pairs)
        if groups and (len(groups) > target or groups[-1][-1][0] == pair[0]):
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return tuple(
        ReliabilityBin(
            low=group[0][0],
            high=group[-1][0],
            count=len(group),
            mean_reward=sum(reward for reward, _ in group) / len(group),
            resolved_rate=sum(flag for _, flag in group) / len(group),
        )
        for group in groups
    )


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``, equal values sharing the average of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks
