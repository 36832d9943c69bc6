"""Paired statistics of the gate: candidate minus champion, instance by instance, with its uncertainty. Pure numpy.

Both models are scored on the same held-out instances (K samples each), so the honest comparison is
paired: one difference per instance (mean of the candidate's K rewards minus the champion's), then an
instance-level bootstrap confidence interval of the mean difference (seeded, so a decision can be
replayed) and a one-sided sign-flip permutation test of "the improvement is at most the margin"
(exact under a symmetric null, even for a handful of instances; the paired t statistic is reported
beside it). With ``alpha`` the tolerated false-promotion rate, the interval is two-sided at
``1 - 2·alpha``, so its lower bound is a one-sided ``1 - alpha`` bound:

- ``pass``: lower bound > margin and the test rejects at ``alpha`` (both must agree);
- ``fail``: upper bound <= margin (the improvement is credibly no larger than the margin);
- ``inconclusive``: otherwise, with how many instances (and, when K > 1 sampling noise dominates, how
  many samples per instance) would decide it if the observed difference and spread held.

Without a champion the candidate's per-instance rewards are held against a constant floor, a sanity
bar rather than a comparison: ``pass`` when the lower bound reaches it, ``fail`` when the upper bound
is below it (the permutation test is reported, not required). Nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from swerl_core.evaluate.uncertainty import Rewards, bootstrap_interval

Decision = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class InstanceRow:
    """One held-out instance in the comparison: each side's mean over its K samples and the difference."""

    instance_id: str
    candidate: float
    champion: float
    difference: float


@dataclass(frozen=True)
class PairedComparison:
    """Candidate vs champion (or vs a floor) over the same instances, and the decision it supports."""

    decision: Decision
    n_instances: int
    samples: int
    margin: float
    mean_difference: float
    lower: float
    upper: float
    confidence: float
    p_value: float
    t_statistic: float
    seed: int
    resamples: int
    rows: tuple[InstanceRow, ...]
    instances_needed: int | None = None  # total instances that would decide an inconclusive result
    samples_needed: int | None = None  # total K per instance that would decide it with today's instances

    def summary(self) -> str:
        """One line: the difference, its interval, the test and (when inconclusive) what would decide it."""
        line = (
            f"paired difference {self.mean_difference:+.4f}, {self.confidence:.0%} CI "
            f"[{self.lower:+.4f}, {self.upper:+.4f}] vs margin {self.margin:g} over {self.n_instances} instances "
            f"(K={self.samples}), permutation p={self.p_value:.4f}"
        )
        if self.decision == "inconclusive":
            line += f"; {decide_hint(self)}"
        return line

    def table(self) -> list[dict[str, float | str]]:
        """The per-instance table as JSON-ready rows."""
        return [
            {"instance_id": r.instance_id, "candidate": r.candidate, "champion": r.champion, "difference": r.difference}
            for r in self.rows
        ]


def decide_hint(comparison: PairedComparison) -> str:
    """What more evidence would decide an inconclusive comparison, in words."""
    parts = []
    if comparison.instances_needed is not None:
        more = comparison.instances_needed - comparison.n_instances
        parts.append(f"about {more} more held-out instances ({comparison.instances_needed} in all)")
    if comparison.samples_needed is not None:
        parts.append(f"K={comparison.samples_needed} samples per instance")
    if not parts:
        return "the observed difference sits on the margin: no feasible amount of data decides it"
    return "would need " + " or ".join(parts)


def compare_paired(
    candidate: Rewards,
    champion: Rewards | None,
    margin: float,
    alpha: float,
    *,
    floor: float = 0.0,
    seed: int = 0,
    resamples: int = 4000,
    strict_floor: bool = False,
) -> PairedComparison:
    """Compare per-instance rewards of ``candidate`` with ``champion`` (or with ``floor`` when ``None``).

    With a champion the instance sets must be equal (the protocol fingerprint already guarantees it for
    evaluations from swerl); the difference is judged against ``margin``. Without one, the candidate's
    rewards are judged against ``floor`` (margin 0 above it); with ``strict_floor`` the interval must rise above
    it, not merely reach it (a resolved rate can never fall below a floor of 0, so reaching it proves nothing).
    """
    if not candidate:
        raise ValueError("no per-instance rewards to compare")
    if champion is not None and set(candidate) != set(champion):
        missing = sorted(set(candidate) ^ set(champion))[:3]
        raise ValueError(f"candidate and champion were scored on different instances (e.g. {', '.join(missing)})")
    ids = sorted(candidate)
    cand = np.array([np.mean(candidate[i]) for i in ids], dtype=float)
    champ = np.array([np.mean(champion[i]) for i in ids] if champion is not None else [floor] * len(ids), dtype=float)
    threshold = margin if champion is not None else 0.0
    diffs = cand - champ
    rng = np.random.default_rng(seed)
    lower, upper = bootstrap_interval(diffs, alpha, rng, resamples)
    p_value = sign_flip_p_value(diffs - threshold, rng, resamples)
    if champion is not None:
        decision: Decision = (
            "pass" if lower > threshold and p_value <= alpha else "fail" if upper <= threshold else "inconclusive"
        )
    elif strict_floor:  # the interval must rise above the floor
        decision = "pass" if lower > threshold else "fail" if upper <= threshold else "inconclusive"
    else:  # a sanity bar, not a comparison: the interval alone, reaching the floor is enough
        decision = "pass" if lower >= threshold else "fail" if upper < threshold else "inconclusive"
    samples = max((len(v) for v in candidate.values()), default=1)
    within = _within_variance(candidate, champion, ids)
    need_n, need_k = (None, None)
    if decision == "inconclusive":
        need_n, need_k = evidence_needed(diffs, threshold, alpha, samples, within)
    rows = tuple(
        InstanceRow(i, float(c), float(h), float(d)) for i, c, h, d in zip(ids, cand, champ, diffs, strict=True)
    )
    return PairedComparison(
        decision=decision,
        n_instances=len(ids),
        samples=samples,
        margin=threshold,
        mean_difference=float(diffs.mean()),
        lower=lower,
        upper=upper,
        confidence=1 - 2 * alpha,
        p_value=p_value,
        t_statistic=paired_t(diffs - threshold),
        seed=seed,
        resamples=resamples,
        rows=rows,
        instances_needed=need_n,
        samples_needed=need_k,
    )


def sign_flip_p_value(centred: np.ndarray, rng: np.random.Generator, resamples: int) -> float:
    """One-sided p-value of ``mean(centred) > 0`` by random sign flips (exact enumeration for n ≤ 12)."""
    n = len(centred)
    observed = centred.mean()
    if n <= 12:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        flipped = (signs * centred).mean(axis=1)
        return float(np.mean(flipped >= observed - 1e-12))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, n))
    flipped = (signs * centred).mean(axis=1)
    return float((1 + np.sum(flipped >= observed - 1e-12)) / (resamples + 1))


def paired_t(centred: np.ndarray) -> float:
    """The paired t statistic of ``centred`` (differences minus the margin); ±inf when they do not vary."""
    n = len(centred)
    sd = float(centred.std(ddof=1)) if n > 1 else 0.0
    mean = float(centred.mean())
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(n))


def evidence_needed(
    diffs: np.ndarray, threshold: float, alpha: float, samples: int, within: float | None
) -> tuple[int | None, int | None]:
    """Instances (in all), and K per instance, at which the observed effect would clear the interval.

    A normal approximation: the half-width of the one-sided bound is ``z·sd/√n``. For K, the variance of
    a per-instance difference splits into the instances' own spread plus sampling noise ``within/K``;
    more samples help only when that noise is what keeps the interval wide.
    """
    gap = abs(float(diffs.mean()) - threshold)
    n = len(diffs)
    var = float(diffs.var(ddof=1)) if n > 1 else 0.0
    if gap < 1e-9 or var == 0.0:
        return None, None
    z = NormalDist().inv_cdf(1 - alpha)
    need_n = max(n + 1, math.ceil(z * z * var / (gap * gap)))
    need_k = None
    if within is not None and within > 0:
        between = max(0.0, var - within / samples)
        room = n * gap * gap / (z * z) - between
        if room > 0:
            need_k = max(samples + 1, math.ceil(within / room))
    return need_n, need_k


def _within_variance(candidate: Rewards, champion: Rewards | None, ids: Sequence[str]) -> float | None:
    """Mean per-instance sampling variance of one sample's difference (candidate + champion); None for K = 1."""
    sides = [candidate] + ([champion] if champion is not None else [])
    per_side = []
    for side in sides:
        variances = [float(np.var(side[i], ddof=1)) for i in ids if len(side[i]) > 1]
        if not variances:
            return None
        per_side.append(float(np.mean(variances)))
    return sum(per_side)
