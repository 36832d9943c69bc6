"""The reward's calibration against execution: ROC AUC, rank correlation and the reliability table."""

from __future__ import annotations

import random

import pytest
from scipy.stats import spearmanr

from swerl_core.evaluate.calibration import average_ranks, calibration, reliability, roc_auc, spearman


def pairwise_auc(scores: list[float], positive: list[bool]) -> float:
    """The AUC by its definition: over every (positive, negative) pair, 1 when the positive scores higher, ½ tied."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def test_auc_is_one_when_the_reward_separates_and_none_when_it_is_constant() -> None:
    assert roc_auc([0.1, 0.2, 0.9, 0.95], [False, False, True, True]) == 1.0
    assert roc_auc([0.9, 0.95, 0.1, 0.2], [False, False, True, True]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) is None


def test_auc_and_rank_correlation_match_their_definitions_with_ties() -> None:
    rng = random.Random(7)
    scores = [rng.choice([-1.0, 0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(300)]
    resolved = [rng.random() < (0.1 + 0.8 * max(s, 0)) for s in scores]
    assert roc_auc(scores, resolved) == pytest.approx(pairwise_auc(scores, resolved), abs=1e-12)
    expected = spearmanr(scores, [float(r) for r in resolved]).statistic
    assert spearman(scores, [float(r) for r in resolved]) == pytest.approx(expected, abs=1e-12)


def test_one_class_or_a_constant_reward_gives_no_number() -> None:
    assert roc_auc([0.1, 0.9], [True, True]) is None
    assert spearman([0.3, 0.3, 0.3], [0.0, 1.0, 1.0]) is None
    summary = calibration([0.2, 0.8], [False, False])
    assert summary.roc_auc is None and summary.spearman is None and summary.resolved_rate == 0.0


def test_reliability_cuts_deciles_without_splitting_equal_rewards() -> None:
    rewards = [i / 100 for i in range(100)]
    table = reliability(rewards, [r >= 0.5 for r in rewards])
    assert [b.count for b in table] == [10] * 10
    assert [b.resolved_rate for b in table] == [0.0] * 5 + [1.0] * 5
    assert table[0].low == 0.0 and table[-1].high == 0.99
    tied = reliability([-1.0] * 60 + [0.5] * 40, [False] * 60 + [True] * 40)
    assert [(b.low, b.high, b.count) for b in tied] == [(-1.0, -1.0, 60), (0.5, 0.5, 40)]
    assert sum(b.count for b in reliability([0.3] * 7, [True] * 7, bins=10)) == 7


def test_average_ranks_share_ties() -> None:
    assert average_ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 rewards but 2"):
        calibration([0.1, 0.2, 0.3], [True, False])


def test_a_nan_reward_is_refused_with_the_count() -> None:
    with pytest.raises(ValueError, match="2 of 4 rewards are NaN"):
        calibration([0.5, float("nan"), 0.1, float("nan")], [True, False, True, False])


def test_a_constant_reward_has_no_auc_even_with_both_classes() -> None:
    assert calibration([0.3, 0.3, 0.3], [True, False, True]).roc_auc is None


def test_no_sample_has_no_resolved_rate() -> None:
    assert calibration([], []).resolved_rate is None
