"""The champion/challenger gate: may a candidate replace the current champion? Pure, no I/O.

Both sides must have been evaluated under the same protocol: the same held-out snapshot, K samples,
instances and decoding settings (:mod:`swerl_core.evaluate.protocol` computes its fingerprint). With a
champion the candidate passes when its mean reward ≥ the champion's + ``margin`` and its format-error
rate ≤ ``format_error_ceiling``; with none, when its mean reward ≥ ``reward_floor`` and the same
ceiling holds. The verdict carries its numbers and a one-line reason, pass or fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from swerl_core.registry import RegistryError
from swerl_core.registry.config import RegistryConfig


@dataclass(frozen=True)
class GateMetrics:
    """The numbers the gate reads from one evaluation, and the fingerprint of the protocol that produced them."""

    snapshot_id: str
    samples: int
    mean_reward: float
    format_error_rate: float
    protocol: str


@dataclass(frozen=True)
class GateVerdict:
    """A pass or fail, the thresholds it was judged against and why."""

    passed: bool
    reason: str
    candidate: GateMetrics
    champion: GateMetrics | None
    champion_version: str | None
    required_reward: float
    format_error_ceiling: float

    @property
    def verdict(self) -> str:
        """``"pass"`` or ``"fail"``."""
        return "pass" if self.passed else "fail"

    def tags(self) -> dict[str, str]:
        """The verdict as model-version tags (``gate.*``)."""
        tags = {
            "gate.verdict": self.verdict,
            "gate.reason": self.reason,
            "gate.required_reward": repr(self.required_reward),
            "gate.format_error_ceiling": repr(self.format_error_ceiling),
            "gate.champion_version": self.champion_version or "none",
            "gate.protocol": self.candidate.protocol,
        }
        if self.champion is not None:
            tags["gate.champion_mean_reward"] = repr(self.champion.mean_reward)
            tags["gate.champion_format_error_rate"] = repr(self.champion.format_error_rate)
        return tags


def gate(
    candidate: GateMetrics,
    champion: GateMetrics | None,
    cfg: RegistryConfig,
    champion_version: str | None = None,
) -> GateVerdict:
    """Judge ``candidate`` against ``champion`` (or the floors when ``champion`` is ``None``)."""
    if champion is not None:
        _require_comparable(candidate, champion)
    required = champion.mean_reward + cfg.margin if champion is not None else cfg.reward_floor
    against = f"champion v{champion_version} + margin {cfg.margin:g}" if champion is not None else "the floor"
    reward_ok = candidate.mean_reward >= required
    format_ok = candidate.format_error_rate <= cfg.format_error_ceiling
    if reward_ok and format_ok:
        reason = (
            f"mean reward {candidate.mean_reward:.4f} >= {required:.4f} ({against}), format errors "
            f"{candidate.format_error_rate:.3f} <= {cfg.format_error_ceiling:g}"
        )
    elif not reward_ok:
        reason = f"mean reward {candidate.mean_reward:.4f} < {required:.4f} ({against})"
    else:
        reason = f"format-error rate {candidate.format_error_rate:.3f} > ceiling {cfg.format_error_ceiling:g}"
    return GateVerdict(
        reward_ok and format_ok, reason, candidate, champion, champion_version, required, cfg.format_error_ceiling
    )


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
