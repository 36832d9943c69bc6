"""``registry`` settings: the registered model name, the gate's margin, ceiling, floor and what it judges a first
candidate against, the promote policy.

Composed into :class:`swerl_core.config.Settings` as ``settings.registry`` (env ``SWERL_REGISTRY__<KEY>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swerl_core.config.checks import (
    DAY_S,
    NAME_MAX_CHARS,
    SEED_MAX,
    is_printable_name,
    require,
    require_integer,
    require_number,
)

Policy = Literal["auto", "manual"]
GateOn = Literal["greedy", "sampled", "resolved"]
WithoutChampion = Literal["floor", "trained_from"]


@dataclass(frozen=True)
class RegistryConfig:
    """Where versions go and when a challenger may replace the champion."""

    model_name: str = "swerl-policy"
    margin: float = 0.0  # pass: the lower bound of the paired improvement over the champion > margin
    alpha: float = 0.05  # tolerated false-promotion rate (one-sided); the interval is two-sided at 1 - 2·alpha
    bootstrap_seed: int = 0  # the instance-level bootstrap is seeded so a decision can be replayed
    bootstrap_resamples: int = 4000
    # Which evaluation decides: the reward of the sampled one (K = evaluate.samples; greedy when K = 1) or of the greedy
    # one, or the resolved rate of the sampled one (its executable instances' answers run against their tests).
    gate_on: GateOn = "sampled"
    format_error_ceiling: float = 0.3  # pass: format-error rate <= ceiling (always applies)
    # With no champion, judge against: the floor (`floor`), or the model the candidate's training started from,
    # evaluated under the same protocol and paired instance by instance like a champion (`trained_from`).
    without_champion: WithoutChampion = "floor"
    reward_floor: float = 0.0  # without_champion floor: pass when the candidate's interval reaches it
    resolved_floor: float = 0.0  # the same floor for a resolved rate (gate_on: resolved)
    policy: Policy = "manual"  # auto: a passing version becomes champion at once
    lock_timeout_s: float = 600.0  # wait for another registration holding the registry lock

    def __post_init__(self) -> None:
        name = self.model_name
        require(
            is_printable_name(name)
            and not any(c in name for c in "/:@")
            and bool(name.strip("."))
            and not ("'" in name and '"' in name),
            "registry.model_name",
            # MLflow refuses '/', ':' and names of dots only; '@' starts an alias in models:/name@alias; its search
            # filter has no escape, so a name is quoted with the quote it lacks.
            f"1 to {NAME_MAX_CHARS} printable characters, not only dots, without '/', ':', '@' or both kinds of "
            f"quote, got {name[:80]!r}",
        )
        # Mean rewards lie in [-1, 1], so a paired improvement never reaches 2: a margin of 2 passes no one.
        require_number("registry.margin", self.margin, 0, 2, open_high=True)
        # alpha is each tail of the two-sided 1 - 2·alpha interval: above 0.5 the "interval" turns inside out.
        require_number("registry.alpha", self.alpha, 0, 0.5, open_low=True)
        require_integer("registry.bootstrap_seed", self.bootstrap_seed, 0, SEED_MAX)
        require_integer("registry.bootstrap_resamples", self.bootstrap_resamples, 100, 1_000_000)
        require_number("registry.format_error_ceiling", self.format_error_ceiling, 0, 1)
        require_number("registry.reward_floor", self.reward_floor, -1, 1)
        require_number("registry.resolved_floor", self.resolved_floor, 0, 1)
        require_number("registry.lock_timeout_s", self.lock_timeout_s, 0, DAY_S, open_low=True, unit="seconds")
