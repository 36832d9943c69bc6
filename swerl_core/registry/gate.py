"""The champion/challenger gate: may a candidate replace the current champion? Pure, no I/O.

Both sides must have been evaluated under the same protocol: the same held-out snapshot, K samples,
instances and decoding settings (:mod:`swerl_core.evaluate.protocol` computes its fingerprint). The
comparison is paired per instance (:mod:`.paired`): ``pass`` only when the lower bound of the
improvement's interval is above ``margin`` and the paired test agrees, ``fail`` when the upper bound is
not, ``inconclusive`` in between (with what would decide it). Without a champion, ``registry.without_champion``
says what the candidate is judged against: ``floor`` holds its interval against ``reward_floor``;
``trained_from`` pairs it, the same way as against a champion, with the model its training run started from
(:class:`TrainedFrom`), and a candidate whose base is unknown is ``inconclusive``. A format-error rate above
``format_error_ceiling`` always fails. Evaluations without per-instance rewards cannot be paired: against a
model that is ``inconclusive``, never a pass on two means. The verdict carries what it was judged against,
its numbers and a one-line reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from swerl_core.config.registry import RegistryConfig
from swerl_core.registry import RegistryError
from swerl_core.registry.paired import Decision, PairedComparison, compare_paired

Measure = Literal["reward", "resolved"]
MEASURE_NAMES: dict[Measure, str] = {"reward": "mean reward", "resolved": "resolved rate"}


@dataclass(frozen=True)
class GateMetrics:
    """The numbers the gate reads from one evaluation, and the fingerprint of the protocol that produced them.

    ``measure`` is what is compared: the similarity ``reward`` or ``resolved`` (1.0 for a sample whose answer
    passed its tests, else 0.0, over the executable instances). ``mean_reward`` is the measure's mean (the mean
    reward, or the resolved rate) and ``rewards`` maps each instance id to its K sample values (empty when unknown).
    """

    snapshot_id: str
    samples: int
    mean_reward: float
    format_error_rate: float
    protocol: str
    rewards: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    measure: Measure = "reward"


@dataclass(frozen=True)
class TrainedFrom:
    """The model a candidate's training run started from (its direct base), evaluated under the same protocol."""

    model: str  # the base model's directory (for a GRPO run, the SFT warm start's final/)
    metrics: GateMetrics


Baseline = Literal["champion", "trained_from", "floor"]
BASELINE_NAMES: dict[Baseline, str] = {"champion": "champion", "trained_from": "base", "floor": "floor"}


@dataclass(frozen=True)
class GateVerdict:
    """A decision (pass, fail, inconclusive), what it was judged against, the thresholds, the statistics and why.

    ``baseline`` is ``champion`` (``champion``/``champion_version`` set), ``trained_from`` (``trained_from`` set
    unless the base is unknown) or ``floor``.
    """

    decision: Decision
    reason: str
    candidate: GateMetrics
    champion: GateMetrics | None
    champion_version: str | None
    required_reward: float
    format_error_ceiling: float
    comparison: PairedComparison | None = None
    baseline: Baseline = "floor"
    trained_from: TrainedFrom | None = None

    @property
    def passed(self) -> bool:
        """True only for ``pass`` (an inconclusive result never promotes)."""
        return self.decision == "pass"

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"fail"`` or ``"inconclusive"``."""
        return self.decision

    @property
    def against(self) -> str:
        """What the candidate was judged against, in words (``champion v3``, ``its base …``, ``the floor …``)."""
        if self.baseline == "champion":
            return f"champion v{self.champion_version}"
        if self.baseline == "trained_from":
            return f"its base {self.trained_from.model}" if self.trained_from else "its base (unknown)"
        return f"the {'resolved ' if self.candidate.measure == 'resolved' else ''}floor {self.required_reward:g}"

    @property
    def baseline_name(self) -> str:
        """What the candidate was paired with, in one word: ``champion``, ``base`` or ``floor``."""
        return BASELINE_NAMES[self.baseline]

    @property
    def baseline_metrics(self) -> GateMetrics | None:
        """The numbers of the model the candidate was paired with (champion or base); ``None`` for the floor."""
        if self.baseline == "trained_from":
            return self.trained_from.metrics if self.trained_from else None
        return self.champion

    def tags(self) -> dict[str, str]:
        """The verdict as model-version tags (``gate.*``)."""
        tags = {
            "gate.verdict": self.verdict,
            "gate.reason": self.reason[:4000],
            "gate.required_reward": repr(self.required_reward),
            "gate.format_error_ceiling": repr(self.format_error_ceiling),
            "gate.champion_version": self.champion_version or "none",
            "gate.protocol": self.candidate.protocol,
            "gate.baseline": self.baseline,
            "gate.against": self.against,
            "gate.measure": self.candidate.measure,
        }
        if self.trained_from is not None:
            tags["gate.baseline_model"] = self.trained_from.model
        if self.champion is not None:
            tags["gate.champion_mean_reward"] = repr(self.champion.mean_reward)
            tags["gate.champion_format_error_rate"] = repr(self.champion.format_error_rate)
        paired = self.baseline_metrics
        if paired is not None:
            tags["gate.baseline_mean_reward"] = repr(paired.mean_reward)
            tags["gate.baseline_format_error_rate"] = repr(paired.format_error_rate)
        if self.comparison is not None:
            tags.update(comparison_tags(self.comparison))
        return tags


def comparison_tags(comparison: PairedComparison, prefix: str = "gate.") -> dict[str, str]:
    """The statistics of a paired comparison as tags under ``prefix``."""
    c = comparison
    tags = {
        "decision": c.decision,
        "mean_difference": repr(c.mean_difference),
        "ci_lower": repr(c.lower),
        "ci_upper": repr(c.upper),
        "confidence": repr(c.confidence),
        "p_value": repr(c.p_value),
        "t_statistic": repr(c.t_statistic),
        "margin": repr(c.margin),
        "n_instances": str(c.n_instances),
        "samples": str(c.samples),
        "bootstrap_seed": str(c.seed),
        "instances_needed": "" if c.instances_needed is None else str(c.instances_needed),
        "samples_needed": "" if c.samples_needed is None else str(c.samples_needed),
    }
    return {prefix + k: v for k, v in tags.items()}


def gate(
    candidate: GateMetrics,
    champion: GateMetrics | None,
    cfg: RegistryConfig,
    champion_version: str | None = None,
    trained_from: TrainedFrom | None = None,
) -> GateVerdict:
    """Judge ``candidate`` against ``champion``; without one, against what ``cfg.without_champion`` names: the floor,
    or ``trained_from`` (the model its training started from; ``None`` when unknown)."""
    if champion is not None:
        baseline: Baseline = "champion"
        paired: GateMetrics | None = champion
        trained_from = None
    elif cfg.without_champion == "trained_from":
        baseline, paired = "trained_from", trained_from.metrics if trained_from else None
    else:
        baseline, paired, trained_from = "floor", None, None
    if paired is not None:
        _require_comparable(candidate, paired, BASELINE_NAMES[baseline])
    floor = floor_of(cfg, candidate.measure)
    required = paired.mean_reward + cfg.margin if paired is not None else floor
    verdict = GateVerdict(
        "inconclusive", "", candidate, champion, champion_version, required, cfg.format_error_ceiling,
        baseline=baseline, trained_from=trained_from,
    )  # fmt: skip
    against = f"{verdict.against} + margin {cfg.margin:g}"
    unknown_base = baseline == "trained_from" and paired is None
    comparison = None if unknown_base else paired_comparison(candidate, paired, cfg)
    if unknown_base:
        decision: Decision = "inconclusive"
        reason = (
            "no known base to compare with (registry.without_champion: trained_from): the checkpoint's training run "
            "records no base model directory that this tracking server knows"
        )
    elif comparison is not None and baseline == "floor":
        decision, reason = comparison.decision, _floor_summary(comparison, candidate, floor)
    elif comparison is not None:
        decision, reason = comparison.decision, f"{comparison.summary()} ({against})"
    elif baseline == "floor":  # an evaluation recorded without per-instance rewards: the floor on the mean
        mean = candidate.mean_reward
        above = mean > required if candidate.measure == "resolved" else mean >= required
        decision = "pass" if above else "fail"
        reason = (
            f"{MEASURE_NAMES[candidate.measure]} {candidate.mean_reward:.4f} {'>=' if decision == 'pass' else '<'} "
            f"{required:.4f} (floor)"
        )
    else:
        decision = "inconclusive"
        reason = (
            f"no per-instance rewards for both sides ({verdict.against}): the paired comparison cannot be made; "
            "evaluate both again"
        )
    if candidate.format_error_rate > cfg.format_error_ceiling:
        decision = "fail"
        reason = f"format-error rate {candidate.format_error_rate:.3f} > ceiling {cfg.format_error_ceiling:g}; {reason}"
    return replace(verdict, decision=decision, reason=reason, comparison=comparison)


def floor_of(cfg: RegistryConfig, measure: Measure) -> float:
    """The floor a candidate without a champion is held against on ``measure`` (``registry.without_champion:
    floor``): ``reward_floor`` for rewards (reaching it passes), ``resolved_floor`` for resolved rates (only rising
    above it passes: a rate of 0 never clears a floor of 0)."""
    return cfg.reward_floor if measure == "reward" else cfg.resolved_floor


def recorded_verdict(tags: Mapping[str, str]) -> GateVerdict:
    """The verdict a version's ``eval.*`` and ``gate.*`` tags record (:meth:`GateVerdict.tags`), without the
    per-instance comparison (that is in its run's ``gate.json``). A version never judged reads as inconclusive."""
    candidate = _tagged_metrics(tags, "eval")
    paired = _tagged_metrics(tags, "gate.baseline") if "gate.baseline_mean_reward" in tags else None
    judged_before: Baseline = "champion" if tags.get("gate.champion_version", "none") != "none" else "floor"
    baseline = _BASELINES.get(tags.get("gate.baseline", ""), judged_before)
    base_model = tags.get("gate.baseline_model")
    decision = _DECISIONS.get(tags.get("gate.verdict", ""))
    return GateVerdict(
        decision or "inconclusive",
        tags.get("gate.reason", "") if decision else f"the gate never judged this version ({tags.get('gate.verdict')})",
        candidate,
        paired if baseline == "champion" else None,
        tags.get("gate.champion_version") if baseline == "champion" else None,
        _float(tags.get("gate.required_reward")),
        _float(tags.get("gate.format_error_ceiling")),
        baseline=baseline,
        trained_from=TrainedFrom(base_model, paired) if baseline == "trained_from" and base_model and paired else None,
    )


_BASELINES: dict[str, Baseline] = {"champion": "champion", "trained_from": "trained_from", "floor": "floor"}
_DECISIONS: dict[str, Decision] = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive"}
_MEASURES: dict[str, Measure] = {"reward": "reward", "resolved": "resolved"}


def _tagged_metrics(tags: Mapping[str, str], prefix: str) -> GateMetrics:
    """``<prefix>_mean_reward``-style numbers (``eval.mean_reward`` or ``gate.baseline_mean_reward``) on the
    candidate's snapshot, K and protocol."""
    joint = "." if prefix == "eval" else "_"
    return GateMetrics(
        tags.get("eval.snapshot_id", ""),
        int(tags.get("eval.samples") or 1),
        _float(tags.get(f"{prefix}{joint}mean_reward")),
        _float(tags.get(f"{prefix}{joint}format_error_rate")),
        tags.get("eval.protocol", ""),
        measure=_MEASURES.get(tags.get("gate.measure", ""), "reward"),
    )


def _float(text: str | None) -> float:
    try:
        return float(text) if text else float("nan")
    except ValueError:
        return float("nan")


def _floor_summary(comparison: PairedComparison, candidate: GateMetrics, floor: float) -> str:
    """The floor comparison in the candidate's own terms (its interval, not differences from the floor)."""
    c = comparison
    return (
        f"{MEASURE_NAMES[candidate.measure]} {candidate.mean_reward:+.4f}, {c.confidence:.0%} CI "
        f"[{c.lower + floor:+.4f}, {c.upper + floor:+.4f}] vs floor {floor:g} over {c.n_instances} instances "
        f"(K={c.samples})"
    )


def paired_comparison(
    candidate: GateMetrics, paired: GateMetrics | None, cfg: RegistryConfig
) -> PairedComparison | None:
    """The paired comparison of two evaluations (or of one against the floor); ``None`` without rewards."""
    if not candidate.rewards or (paired is not None and not paired.rewards):
        return None
    try:
        return compare_paired(
            candidate.rewards,
            paired.rewards if paired is not None else None,
            cfg.margin,
            cfg.alpha,
            floor=floor_of(cfg, candidate.measure),
            strict_floor=candidate.measure == "resolved",
            seed=cfg.bootstrap_seed,
            resamples=cfg.bootstrap_resamples,
        )
    except ValueError as exc:
        raise RegistryError(f"cannot compare: {exc}") from None


def _require_comparable(candidate: GateMetrics, other: GateMetrics, name: str) -> None:
    if other.measure != candidate.measure:
        raise RegistryError(f"cannot compare: the candidate's {candidate.measure} with the {name}'s {other.measure}")
    if (other.snapshot_id, other.samples) != (candidate.snapshot_id, candidate.samples):
        raise RegistryError(
            f"cannot compare: candidate evaluated on {candidate.snapshot_id} (K={candidate.samples}), "
            f"{name} on {other.snapshot_id} (K={other.samples})"
        )
    if other.protocol != candidate.protocol:
        raise RegistryError(
            f"cannot compare: candidate and {name} were evaluated on {candidate.snapshot_id} (K={candidate.samples}) "
            f"under different protocols (instances or decoding settings): candidate {candidate.protocol or 'unknown'}, "
            f"{name} {other.protocol or 'unknown'}"
        )
