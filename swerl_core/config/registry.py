"""``registry`` settings: the registered model name, the gate's margin, ceiling, floor and what it judges a first
candidate against, the promote policy.

Composed into :class:`swerl_core.config.Settings` as ``settings.registry`` (env ``SWERL_REGISTRY__<KEY>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swerl_core.errors import require_setting

Policy = Literal["auto", "manual"]
GateOn = Literal["greedy", "sampled"]
WithoutChampion = Literal["floor", "trained_from"]


@dataclass(frozen=True)
class RegistryConfig:
    """Where versions go and when a challenger may replace the champion."""

    model_name: str = "swerl-policy"
    margin: float = 0.0  # pass: the lower bound of the paired improvement over the champion > margin
    alpha: float = 0.05  # tolerated false-promotion rate (one-sided); the interval is two-sided at 1 - 2·alpha
    bootstrap_seed: int = 0  # the instance-level bootstrap is seeded so a decision can be replayed
    bootstrap_resamples: int = 4000
    gate_on: GateOn = "sampled"  # which evaluation decides: sampled (K = evaluate.samples; greedy when K = 1) or greedy
    format_error_ceiling: float = 0.3  # pass: format-error rate <= ceiling (always applies)
    # With no champion, judge against: the floor (`floor`), or the model the candidate's training started from,
    # evaluated under the same protocol and paired instance by instance like a champion (`trained_from`).
    without_champion: WithoutChampion = "floor"
    reward_floor: float = 0.0  # without_champion floor: pass when the candidate's interval reaches it
    policy: Policy = "manual"  # auto: a passing version becomes champion at once
    lock_timeout_s: float = 600.0  # wait for another registration holding the registry lock

    def __post_init__(self) -> None:
        require_setting(
            bool(self.model_name.strip()) and "/" not in self.model_name,
            "registry.model_name",
            "a non-empty name without '/'",
        )
        require_setting(self.margin >= 0, "registry.margin", "a non-negative number")
        require_setting(0 <= self.format_error_ceiling <= 1, "registry.format_error_ceiling", "a rate in [0, 1]")
        require_setting(-1 <= self.reward_floor <= 1, "registry.reward_floor", "a reward in [-1, 1]")
        require_setting(self.lock_timeout_s > 0, "registry.lock_timeout_s", "a positive number")
