"""The champion/challenger gate: may a candidate replace the current champion? Pure, no I/O.

Both sides must have been evaluated under the same protocol: the same held-out snapshot, K samples,
instances and decoding settings (:mod:`swerl_core.evaluate.protocol` computes its fingerprint). The
comparison is paired per instance (:mod:`.paired`): ``pass`` only when the lower bound of the
improvement's interval is above ``margin`` and the paired test agrees, ``fail`` when the upper bound is
not, ``inconclusive`` in between (with what would decide it). Without a champion the candidate's
interval is held against ``reward_floor``. A format-error rate above ``format_error_ceiling`` always
fails. Evaluations without per-instance rewards cannot be paired: against a champion that is
``inconclusive``, never a pass on two means. The verdict carries its numbers and a one-line reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swerl_core.config.registry import RegistryConfig
from swerl_core.registry import RegistryError
from swerl_core.registry.paired import Decision, PairedComparison, compare_paired


@dataclass(frozen=True)
class GateMetrics:
    """The numbers the gate reads from one evaluation, and the fingerprint of the protocol that produced them.

    ``rewards`` maps each held-out instance id to its K sample rewards (empty when unknown).
    """

    snapshot_id: str
    samples: int
    mean_reward: float
    format_error_rate: float
    protocol: str
    rewards: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class GateVerdict:
    """A decision (pass, fail, inconclusive), the thresholds it was judged against, the statistics and why."""

    decision: Decision
    reason: str
    candidate: GateMetrics
    champion: GateMetrics | None
    champion_version: str | None
    required_reward: float
    format_error_ceiling: float
    comparison: PairedComparison | None = None

    @property
    def passed(self) -> bool:
        """True only for ``pass`` (an inconclusive result never promotes)."""
        return self.decision == "pass"

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"fail"`` or ``"inconclusive"``."""
        return self.decision

    def tags(self) -> dict[str, str]:
        """The verdict as model-version tags (``gate.*``)."""
        tags = {
            "gate.verdict": self.verdict,
            "gate.reason": self.reason[:4000],
            "gate.required_reward": repr(self.required_reward),
            "gate.format_error_ceiling": repr(self.format_error_ceiling),
            "gate.champion_version": self.champion_version or "none",
            "gate.protocol": self.candidate.protocol,
        }
        if self.champion is not None:
            tags["gate.champion_mean_reward"] = repr(self.champion.mean_reward)
            tags["gate.champion_format_error_rate"] = repr(self.champion.format_error_rate)
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
) -> GateVerdict:
    """Judge ``candidate`` against ``champion`` (or the floor when ``champion`` is ``None``)."""
    if champion is not None:
        _require_comparable(candidate, champion)
    required = champion.mean_reward + cfg.margin if champion is not None else cfg.reward_floor
    against = f"champion v{champion_version} + margin {cfg.margin:g}" if champion is not None else "the floor"
    comparison = paired_comparison(candidate, champion, cfg)
    if comparison is not None and champion is None:
        decision, reason = comparison.decision, _floor_summary(comparison, candidate, cfg.reward_floor)
    elif comparison is not None:
        decision, reason = comparison.decision, f"{comparison.summary()} ({against})"
    elif champion is None:  # an evaluation recorded without per-instance rewards: the floor on the mean
        decision = "pass" if candidate.mean_reward >= required else "fail"
        reason = f"mean reward {candidate.mean_reward:.4f} {'>=' if decision == 'pass' else '<'} {required:.4f} (floor)"
    else:
        decision = "inconclusive"
        reason = "no per-instance rewards for both sides: the paired comparison cannot be made; evaluate both again"
    if candidate.format_error_rate > cfg.format_error_ceiling:
        decision = "fail"
        reason = f"format-error rate {candidate.format_error_rate:.3f} > ceiling {cfg.format_error_ceiling:g}; {reason}"
    return GateVerdict(
        decision, reason, candidate, champion, champion_version, required, cfg.format_error_ceiling, comparison
    )


def _floor_summary(comparison: PairedComparison, candidate: GateMetrics, floor: float) -> str:
    """The floor comparison in the candidate's own terms (its interval, not differences from the floor)."""
    c = comparison
    return (
        f"mean reward {candidate.mean_reward:+.4f}, {c.confidence:.0%} CI [{c.lower + floor:+.4f}, "
        f"{c.upper + floor:+.4f}] vs floor {floor:g} over {c.n_instances} instances (K={c.samples})"
    )


def paired_comparison(
    candidate: GateMetrics, champion: GateMetrics | None, cfg: RegistryConfig
) -> PairedComparison | None:
    """The paired comparison of two evaluations (or of one against the floor); ``None`` without rewards."""
    if not candidate.rewards or (champion is not None and not champion.rewards):
        return None
    try:
        return compare_paired(
            candidate.rewards,
            champion.rewards if champion is not None else None,
            cfg.margin,
            cfg.alpha,
            floor=cfg.reward_floor,
            seed=cfg.bootstrap_seed,
            resamples=cfg.bootstrap_resamples,
        )
    except ValueError as exc:
        raise RegistryError(f"cannot compare: {exc}") from None


def _require_comparable(candidate: GateMetrics, champion: GateMetrics) -> None:
    if (champion.snapshot_id, champion.samples) != (candidate.snapshot_id, candidate.samples):
        raise RegistryError(
            f"cannot compare: candidate evaluated on {candidate.snapshot_id} (K={candidate.samples}), "
            f"champion on {champion.snapshot_id} (K={champion.samples})"
        )
    if champion.protocol != candidate.protocol:
        raise RegistryError(
            f"cannot compare: candidate and champion were evaluated on {candidate.snapshot_id} (K={candidate.samples}) "
            f"under different protocols (instances or decoding settings): candidate {candidate.protocol or 'unknown'}, "
            f"champion {champion.protocol or 'unknown'}"
        )
