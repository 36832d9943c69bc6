"""Evaluation metrics over rollouts: pure functions of the per-sample results, no I/O.

Definitions (K samples per instance): mean reward over all samples; format-error rate (reward −1);
exact-match rate (reward 1.0: the predicted change equals the oracle's); apply rate (the edits parse,
apply cleanly to the base files and stay inside the tree); best-of-K reward (per instance, the best
sample; then the mean); path escapes (refused paths); tokens generated; and a per-repository breakdown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

EXACT = 1.0 - 1e-12


@dataclass(frozen=True)
class SampleResult:
    """One rollout of one instance, scored: its reward, error, patch and what applying it did."""

    instance_id: str
    repo: str
    sample: int
    output: str
    reward: float
    error: str | None
    applied: bool
    refused_paths: tuple[str, ...]
    model_patch: str
    tokens: int
    resolution: str | None = None  # run against its tests: resolved, or why not (evaluate.resolved); None: not run
    resolution_detail: str = ""


@dataclass(frozen=True)
class EvalMetrics:
    """Summary of one evaluation; ``per_repo`` maps ``owner/name`` to the same rates for that repository."""

    n_instances: int
    samples_per_instance: int
    n_samples: int
    mean_reward: float
    format_error_rate: float
    exact_match_rate: float
    apply_rate: float
    best_of_k_reward: float
    path_escapes: int
    tokens_generated: int
    per_repo: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The scalar metrics (what MLflow and the ``evaluations`` table record)."""
        return {k: float(v) for k, v in asdict(self).items() if k != "per_repo"}

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-friendly values."""
        return {**self.headline(), "per_repo": {k: dict(v) for k, v in self.per_repo.items()}}


def summarize(results: Sequence[SampleResult], samples_per_instance: int) -> EvalMetrics:
    """The :class:`EvalMetrics` of ``results`` (K = ``samples_per_instance``); zeros when there are none."""
    by_instance = _group(results)
    per_repo_rows: dict[str, list[SampleResult]] = defaultdict(list)
    for result in results:
        per_repo_rows[result.repo].append(result)
    rates = _rates(results, by_instance)
    per_repo = {
        repo: {"n_instances": float(len({r.instance_id for r in rows})), **_rates(rows, _group(rows))}
        for repo, rows in sorted(per_repo_rows.items())
    }
    return EvalMetrics(
        n_instances=len(by_instance),
        samples_per_instance=samples_per_instance,
        n_samples=len(results),
        mean_reward=rates["mean_reward"],
        format_error_rate=rates["format_error_rate"],
        exact_match_rate=rates["exact_match_rate"],
        apply_rate=rates["apply_rate"],
        best_of_k_reward=rates["best_of_k_reward"],
        path_escapes=sum(len(r.refused_paths) for r in results),
        tokens_generated=sum(r.tokens for r in results),
        per_repo=per_repo,
    )


def _group(results: Sequence[SampleResult]) -> dict[str, list[SampleResult]]:
    groups: dict[str, list[SampleResult]] = defaultdict(list)
    for result in results:
        groups[result.instance_id].append(result)
    return groups


def _rates(results: Sequence[SampleResult], by_instance: Mapping[str, Sequence[SampleResult]]) -> dict[str, float]:
    n = len(results)
    if n == 0:
        return dict.fromkeys(
            ("mean_reward", "format_error_rate", "exact_match_rate", "apply_rate", "best_of_k_reward"), 0.0
        )
    best = [max(r.reward for r in group) for group in by_instance.values()]
    return {
        "mean_reward": sum(r.reward for r in results) / n,
        "format_error_rate": sum(r.error is not None for r in results) / n,
        "exact_match_rate": sum(r.reward >= EXACT for r in results) / n,
        "apply_rate": sum(r.applied for r in results) / n,
        "best_of_k_reward": sum(best) / len(best),
    }
