"""Evaluation metrics: mean, format errors, exact match, apply, best-of-K and the per-repository breakdown."""

from __future__ import annotations

import pytest

from swerl_core.evaluate.metrics import SampleResult, summarize


def _r(iid: str, repo: str, k: int, reward: float, applied: bool = True, tokens: int = 10) -> SampleResult:
    error = "no SEARCH/REPLACE block found" if reward == -1.0 else None
    return SampleResult(iid, repo, k, "out", reward, error, applied and error is None, (), "", tokens)


def test_metrics_over_two_repos_and_two_samples_each() -> None:
    results = [
        _r("a-1", "o/a", 0, 1.0),
        _r("a-1", "o/a", 1, 0.5),
        _r("a-2", "o/a", 0, -1.0),
        _r("a-2", "o/a", 1, 0.2, applied=False),
        _r("b-1", "o/b", 0, 0.0),
        _r("b-1", "o/b", 1, -1.0),
    ]
    m = summarize(results, samples_per_instance=2)
    assert (m.n_instances, m.n_samples, m.tokens_generated) == (3, 6, 60)
    assert m.mean_reward == pytest.approx((1.0 + 0.5 - 1.0 + 0.2 + 0.0 - 1.0) / 6)
    assert m.format_error_rate == pytest.approx(2 / 6)
    assert m.exact_match_rate == pytest.approx(1 / 6)
    assert m.apply_rate == pytest.approx(3 / 6)
    assert m.best_of_k_reward == pytest.approx((1.0 + 0.2 + 0.0) / 3)
    assert m.per_repo["o/a"]["n_instances"] == 2 and m.per_repo["o/b"]["mean_reward"] == pytest.approx(-0.5)
    assert m.per_repo["o/b"]["format_error_rate"] == pytest.approx(0.5)


def test_empty_evaluation_has_zero_rates() -> None:
    m = summarize([], samples_per_instance=1)
    assert (m.n_instances, m.mean_reward, m.best_of_k_reward, m.per_repo) == (0, 0.0, 0.0, {})
