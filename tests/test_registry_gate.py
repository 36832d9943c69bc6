"""The champion/challenger gate, as properties: the decision follows the paired interval, the margin, the ceiling
and the floor; without a champion under ``trained_from`` the candidate is paired with its base the same way (an
unknown base is inconclusive, saying so); an interval that straddles the margin is inconclusive with what would
decide it; evaluations under different protocols or on different instances are never compared; a verdict reads
back from its tags."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swerl_core.config.registry import RegistryConfig
from swerl_core.registry import RegistryError
from swerl_core.registry.gate import GateMetrics, TrainedFrom, gate, recorded_verdict

rewards = st.floats(-1.0, 1.0, allow_nan=False)
rates = st.floats(0.0, 1.0, allow_nan=False)
margins = st.floats(0.0, 0.3, allow_nan=False)
per_instance = st.lists(st.tuples(rewards, rewards), min_size=2, max_size=30)
fingerprints = st.sampled_from(("9f2c1a7be0d43c55", "04ab77e1c2d9f810", "c3e88d0f5a6b2471"))
FAST = {"bootstrap_resamples": 400}


def _m(
    values: list[float] | float,
    fmt: float = 0.0,
    snapshot: str = "s1",
    k: int = 1,
    protocol: str = "p-full",
) -> GateMetrics:
    """Metrics of one evaluation whose instance ``i{j}`` scored ``values[j]`` (a number: 12 instances alike)."""
    values = [values] * 12 if isinstance(values, float | int) else values
    table = {f"i{j:03d}": (float(v),) * k for j, v in enumerate(values)}
    return GateMetrics(snapshot, k, sum(values) / len(values), fmt, protocol, table)


@settings(max_examples=60, deadline=None)
@given(per_instance, margins, rates)
def test_pass_exactly_when_the_interval_clears_the_margin_and_the_test_agrees(
    pairs: list[tuple[float, float]], margin: float, fmt: float
) -> None:
    cfg = RegistryConfig(margin=margin, format_error_ceiling=0.3, **FAST)
    verdict = gate(_m([c for c, _ in pairs], fmt), _m([h for _, h in pairs]), cfg, champion_version="3")
    c = verdict.comparison
    assert c is not None and c.n_instances == len(pairs)
    assert c.lower <= c.mean_difference + 1e-12 and c.mean_difference <= c.upper + 1e-12
    expected = (
        "pass" if c.lower > margin and c.p_value <= cfg.alpha else "fail" if c.upper <= margin else "inconclusive"
    )
    assert verdict.decision == (expected if fmt <= 0.3 else "fail"), verdict.reason
    assert verdict.tags()["gate.verdict"] == verdict.decision
    assert verdict.tags()["gate.champion_version"] == "3"


@settings(max_examples=40, deadline=None)
@given(per_instance, st.floats(0.0, 1.0))
def test_a_uniformly_better_candidate_never_does_worse_at_the_gate(
    pairs: list[tuple[float, float]], gain: float
) -> None:
    order = {"fail": 0, "inconclusive": 1, "pass": 2}
    cfg = RegistryConfig(margin=0.01, **FAST)
    champion = _m([h for _, h in pairs])
    worse = gate(_m([c for c, _ in pairs]), champion, cfg)
    better = gate(_m([c + gain for c, _ in pairs]), champion, cfg)
    assert order[better.decision] >= order[worse.decision], (worse.reason, better.reason)


def test_an_interval_that_straddles_the_margin_is_inconclusive_and_says_what_would_decide_it() -> None:
    noisy = [0.9, -0.6, 0.7, -0.5, 0.8, -0.2, 0.6, -0.4, 0.5, 0.1] * 2
    verdict = gate(_m([0.1 + d for d in noisy]), _m([0.1] * 20), RegistryConfig(margin=0.0), "1")
    assert verdict.decision == "inconclusive" and not verdict.passed
    needed = verdict.comparison.instances_needed
    assert needed is not None and needed > 20 and f"about {needed - 20} more held-out instances" in verdict.reason
    assert verdict.tags()["gate.instances_needed"] == str(needed)


def test_more_samples_are_suggested_when_sampling_noise_keeps_the_interval_wide() -> None:
    # Every instance is equally hard; only the K = 2 samples are noisy, so more samples would narrow the interval.
    noise = [0.5, -0.5, 0.45, -0.4, 0.3, -0.35, 0.5, -0.45, 0.4, -0.3]
    cand = {f"i{j}": (0.3 + noise[j % 10], 0.3 - noise[(j + 3) % 10]) for j in range(30)}
    champ = {f"i{j}": (0.2 + noise[(j + 5) % 10], 0.2 - noise[(j + 7) % 10]) for j in range(30)}
    verdict = gate(
        GateMetrics("s1", 2, 0.3, 0.0, "p", cand), GateMetrics("s1", 2, 0.2, 0.0, "p", champ), RegistryConfig()
    )
    assert verdict.decision == "inconclusive", verdict.reason
    needed = verdict.comparison.samples_needed
    assert needed is not None and needed > 2 and f"K={needed} samples per instance" in verdict.reason


def test_a_clear_improvement_passes_and_a_clear_regression_fails() -> None:
    base = [(-1.0 if j % 3 == 0 else 0.2 + 0.01 * j) for j in range(30)]
    cfg = RegistryConfig(margin=0.05)
    assert gate(_m([b + 0.3 for b in base]), _m(base), cfg, "1").decision == "pass"
    regression = gate(_m([b - 0.2 for b in base]), _m(base), cfg, "1")
    assert regression.decision == "fail" and regression.comparison.upper <= 0.05


def test_identical_models_do_not_pass() -> None:
    base = [(-1.0 if j % 3 == 0 else 0.3) for j in range(30)]
    verdict = gate(_m(base), _m(base), RegistryConfig(), "1")
    assert verdict.decision == "fail" and verdict.comparison.mean_difference == 0.0


def test_the_bootstrap_is_seeded_so_a_decision_replays() -> None:
    cand, champ = _m([0.1 * (j % 7) - 0.2 for j in range(25)]), _m([0.05 * (j % 5) for j in range(25)])
    one, two = gate(cand, champ, RegistryConfig(), "1"), gate(cand, champ, RegistryConfig(), "1")
    assert (one.comparison.lower, one.comparison.upper) == (two.comparison.lower, two.comparison.upper)
    other = gate(cand, champ, RegistryConfig(bootstrap_seed=7), "1")
    assert other.comparison.seed == 7 and other.comparison.lower != one.comparison.lower


@settings(max_examples=40, deadline=None)
@given(st.lists(rewards, min_size=1, max_size=20), st.floats(-1.0, 1.0), rates)
def test_without_champion_the_interval_is_held_against_the_floor(values: list[float], floor: float, fmt: float) -> None:
    verdict = gate(_m(values, fmt), None, RegistryConfig(reward_floor=floor, format_error_ceiling=0.5, **FAST))
    c = verdict.comparison
    expected = "pass" if c.lower >= 0 else "fail" if c.upper < 0 else "inconclusive"  # differences from the floor
    assert verdict.decision == (expected if fmt <= 0.5 else "fail")
    assert verdict.tags()["gate.champion_version"] == "none"


def test_without_per_instance_rewards_a_champion_comparison_is_inconclusive_never_a_pass() -> None:
    bare = GateMetrics("s1", 1, 0.9, 0.0, "p")
    verdict = gate(bare, GateMetrics("s1", 1, 0.1, 0.0, "p"), RegistryConfig(), "1")
    assert verdict.decision == "inconclusive" and "per-instance" in verdict.reason
    assert gate(bare, None, RegistryConfig(reward_floor=0.5)).decision == "pass"


def test_the_format_error_ceiling_always_applies() -> None:
    verdict = gate(_m(0.9, 0.4), _m(0.1), RegistryConfig(format_error_ceiling=0.2), "1")
    assert verdict.decision == "fail" and "format-error rate 0.400 > ceiling 0.2" in verdict.reason


def test_candidate_and_champion_on_different_snapshots_or_instances_are_not_compared() -> None:
    with pytest.raises(RegistryError, match="cannot compare"):
        gate(_m(0.9, snapshot="s2"), _m(0.1, snapshot="s1"), RegistryConfig())
    with pytest.raises(RegistryError, match="K=4"):
        gate(_m(0.9, k=4), _m(0.1, k=1), RegistryConfig())
    with pytest.raises(RegistryError, match="different instances"):
        gate(_m([0.9] * 5), _m([0.1] * 6), RegistryConfig())


@settings(max_examples=40, deadline=None)  # a bootstrap per example: no per-example deadline on a busy machine
@given(rewards, rewards, fingerprints, fingerprints)
def test_candidate_and_champion_under_different_protocols_are_never_compared(
    cand: float, champ: float, cand_protocol: str, champ_protocol: str
) -> None:
    candidate, champion = _m(cand, protocol=cand_protocol), _m(champ, protocol=champ_protocol)
    if cand_protocol == champ_protocol:
        assert gate(candidate, champion, RegistryConfig(**FAST), "2").champion == champion
    else:
        with pytest.raises(RegistryError, match="different protocols") as refused:
            gate(candidate, champion, RegistryConfig(), "2")
        assert cand_protocol in str(refused.value) and champ_protocol in str(refused.value)
        assert "\n" not in str(refused.value), "the refusal must be one line"


def test_same_snapshot_and_k_but_a_limited_champion_evaluation_is_refused() -> None:
    with pytest.raises(RegistryError, match="cannot compare: .* different protocols"):
        gate(_m(0.2, protocol="full-4-instances"), _m(0.9, protocol="limit-1"), RegistryConfig(), "1")


def test_the_verdict_records_the_protocol_and_the_interval_it_was_judged_under() -> None:
    tags = gate(_m(0.5, protocol="abc"), None, RegistryConfig()).tags()
    assert tags["gate.protocol"] == "abc" and tags["gate.decision"] == "pass"
    assert float(tags["gate.ci_lower"]) == 0.5 == float(tags["gate.ci_upper"]) and tags["gate.n_instances"] == "12"


BASE = [(-1.0 if j % 3 else -0.2) for j in range(24)]  # a base model: mostly malformed answers
TRAINED_FROM = RegistryConfig(without_champion="trained_from", reward_floor=0.9, **FAST)  # a floor it would fail


def test_trained_from_passes_a_real_improvement_over_the_base_and_says_it_was_the_comparison() -> None:
    base = TrainedFrom("/home/checkpoints/sft-run/final", _m(BASE))
    verdict = gate(_m([b + 0.5 for b in BASE]), None, TRAINED_FROM, trained_from=base)
    assert verdict.decision == "pass", verdict.reason
    assert verdict.comparison is not None and verdict.comparison.mean_difference == pytest.approx(0.5)
    assert verdict.against == "its base /home/checkpoints/sft-run/final" and verdict.against in verdict.reason
    tags = verdict.tags()
    assert (tags["gate.baseline"], tags["gate.baseline_model"]) == ("trained_from", base.model)
    assert float(tags["gate.baseline_mean_reward"]) == pytest.approx(sum(BASE) / len(BASE))
    assert tags["gate.champion_version"] == "none" and "gate.champion_mean_reward" not in tags
    # The floor would have failed this candidate: the setting, not the floor, decided.
    assert float(tags["gate.required_reward"]) == pytest.approx(sum(BASE) / len(BASE))


def test_trained_from_fails_a_candidate_no_better_than_its_base_and_is_inconclusive_on_noise() -> None:
    base = TrainedFrom("/base", _m(BASE))
    assert gate(_m(BASE), None, TRAINED_FROM, trained_from=base).decision == "fail"
    assert gate(_m([b - 0.3 for b in BASE]), None, TRAINED_FROM, trained_from=base).decision == "fail"
    noisy = [b + (0.6 if j % 2 else -0.5) for j, b in enumerate(BASE)]
    unsure = gate(_m(noisy), None, TRAINED_FROM, trained_from=base)
    assert unsure.decision == "inconclusive" and "more held-out instances" in unsure.reason


def test_trained_from_without_a_known_base_is_inconclusive_saying_so() -> None:
    verdict = gate(_m([0.9] * 12), None, TRAINED_FROM)
    assert verdict.decision == "inconclusive" and verdict.comparison is None
    assert verdict.reason.startswith("no known base to compare with (registry.without_champion: trained_from)")
    assert verdict.against == "its base (unknown)" and verdict.tags()["gate.baseline"] == "trained_from"
    ceiling = gate(_m([0.9] * 12, fmt=0.9), None, TRAINED_FROM)
    assert ceiling.decision == "fail" and ceiling.reason.startswith("format-error rate 0.900 > ceiling")


def test_a_champion_always_decides_over_the_base() -> None:
    champion, base = _m([0.8] * 24), TrainedFrom("/base", _m(BASE))
    verdict = gate(_m([b + 0.5 for b in BASE]), champion, TRAINED_FROM, "4", trained_from=base)
    assert verdict.decision == "fail" and verdict.baseline == "champion" and verdict.against == "champion v4"
    assert verdict.trained_from is None and verdict.tags()["gate.baseline"] == "champion"


def test_trained_from_refuses_a_base_evaluated_under_another_protocol() -> None:
    base = TrainedFrom("/base", _m(BASE, protocol="limit-1"))
    with pytest.raises(RegistryError, match="candidate and base were evaluated .* under different protocols"):
        gate(_m(BASE), None, TRAINED_FROM, trained_from=base)


@pytest.mark.parametrize("against", ["trained_from", "champion", "floor"])
def test_a_verdict_reads_back_from_its_tags(against: str) -> None:
    base = TrainedFrom("/base", _m(BASE))
    champion = _m([b + 0.1 for b in BASE]) if against == "champion" else None
    cfg = TRAINED_FROM if against == "trained_from" else RegistryConfig(reward_floor=-0.9, **FAST)
    verdict = gate(_m([b + 0.5 for b in BASE]), champion, cfg, "2" if champion else None, trained_from=base)
    evaluation = {"eval.mean_reward": repr(verdict.candidate.mean_reward), "eval.format_error_rate": "0.0",
                  "eval.snapshot_id": "s1", "eval.samples": "1", "eval.protocol": "p-full"}  # fmt: skip
    tags = {**verdict.tags(), **evaluation}
    again = recorded_verdict(tags)
    assert (again.decision, again.reason, again.baseline, again.against) == (
        verdict.decision,
        verdict.reason,
        verdict.baseline,
        verdict.against,
    )
    assert again.candidate.mean_reward == verdict.candidate.mean_reward
    paired = verdict.baseline_metrics
    assert (again.baseline_metrics is None) == (paired is None)
    if paired is not None and again.baseline_metrics is not None:
        assert again.baseline_metrics.mean_reward == paired.mean_reward


def test_a_version_never_judged_reads_back_as_inconclusive() -> None:
    again = recorded_verdict({"gate.verdict": "pending", "eval.mean_reward": "0.1"})
    assert again.decision == "inconclusive" and "never judged" in again.reason and not again.passed
