"""The champion/challenger gate, as properties: the verdict follows the margin, the ceiling and the floors, and
evaluations under different protocols are never compared."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swerl_core.registry import RegistryError
from swerl_core.registry.config import RegistryConfig
from swerl_core.registry.gate import GateMetrics, gate

rewards = st.floats(-1.0, 1.0, allow_nan=False)
rates = st.floats(0.0, 1.0, allow_nan=False)
margins = st.floats(0.0, 0.5, allow_nan=False)
fingerprints = st.sampled_from(("9f2c1a7be0d43c55", "04ab77e1c2d9f810", "c3e88d0f5a6b2471"))


def _m(reward: float, fmt: float, snapshot: str = "s1", k: int = 1, protocol: str = "p-full") -> GateMetrics:
    return GateMetrics(snapshot, k, reward, fmt, protocol)


@given(rewards, rates, rewards, rates, margins, rates)
def test_pass_exactly_when_reward_clears_champion_plus_margin_and_format_under_ceiling(
    cand: float, cand_fmt: float, champ: float, champ_fmt: float, margin: float, ceiling: float
) -> None:
    cfg = RegistryConfig(margin=margin, format_error_ceiling=ceiling)
    verdict = gate(_m(cand, cand_fmt), _m(champ, champ_fmt), cfg, champion_version="3")
    assert verdict.passed == (cand >= champ + margin and cand_fmt <= ceiling), verdict.reason
    assert verdict.required_reward == champ + margin
    assert verdict.tags()["gate.verdict"] == ("pass" if verdict.passed else "fail")
    assert verdict.tags()["gate.champion_version"] == "3"


@given(rewards, rates, st.floats(-1.0, 1.0), rates)
def test_without_champion_the_floors_decide(cand: float, fmt: float, floor: float, ceiling: float) -> None:
    cfg = RegistryConfig(reward_floor=floor, format_error_ceiling=ceiling)
    verdict = gate(_m(cand, fmt), None, cfg)
    assert verdict.passed == (cand >= floor and fmt <= ceiling)
    assert verdict.tags()["gate.champion_version"] == "none"


@given(rewards, rates, rewards, rates, st.floats(0.0, 1.0))
def test_a_better_candidate_never_fails_where_a_worse_one_passes(
    cand: float, fmt: float, champ: float, champ_fmt: float, gain: float
) -> None:
    cfg = RegistryConfig(margin=0.01, format_error_ceiling=0.3)
    worse = gate(_m(cand, fmt), _m(champ, champ_fmt), cfg)
    better = gate(_m(min(1.0, cand + gain), fmt), _m(champ, champ_fmt), cfg)
    assert not (worse.passed and not better.passed)


def test_the_verdict_says_why_it_failed() -> None:
    cfg = RegistryConfig(margin=0.05, format_error_ceiling=0.2)
    assert "< 0.5500" in gate(_m(0.52, 0.0), _m(0.5, 0.0), cfg, "1").reason
    assert "format-error rate 0.400 > ceiling 0.2" in gate(_m(0.9, 0.4), _m(0.5, 0.0), cfg, "1").reason


def test_candidate_and_champion_on_different_snapshots_are_not_compared() -> None:
    with pytest.raises(RegistryError, match="cannot compare"):
        gate(_m(0.9, 0.0, "s2"), _m(0.1, 0.0, "s1"), RegistryConfig())
    with pytest.raises(RegistryError, match="K=4"):
        gate(_m(0.9, 0.0, k=4), _m(0.1, 0.0, k=1), RegistryConfig())


@given(rewards, rates, rewards, rates, fingerprints, fingerprints)
def test_candidate_and_champion_under_different_protocols_are_never_compared(
    cand: float, cand_fmt: float, champ: float, champ_fmt: float, cand_protocol: str, champ_protocol: str
) -> None:
    candidate, champion = _m(cand, cand_fmt, protocol=cand_protocol), _m(champ, champ_fmt, protocol=champ_protocol)
    if cand_protocol == champ_protocol:
        assert gate(candidate, champion, RegistryConfig(), "2").champion == champion
    else:
        with pytest.raises(RegistryError, match="different protocols") as refused:
            gate(candidate, champion, RegistryConfig(), "2")
        assert cand_protocol in str(refused.value) and champ_protocol in str(refused.value)
        assert "\n" not in str(refused.value), "the refusal must be one line"


def test_same_snapshot_and_k_but_a_limited_champion_evaluation_is_refused() -> None:
    with pytest.raises(RegistryError, match="cannot compare: .* different protocols"):
        gate(_m(0.2, 0.0, protocol="full-4-instances"), _m(0.9, 0.0, protocol="limit-1"), RegistryConfig(), "1")


def test_the_verdict_records_the_protocol_it_was_judged_under() -> None:
    assert gate(_m(0.5, 0.0, protocol="abc"), None, RegistryConfig()).tags()["gate.protocol"] == "abc"
