"""The funnel: how many pull requests each curation stage received, kept, and dropped for which reason.

Stages report their drops here and nowhere else, so every pull request that does not reach the
snapshot has exactly one recorded reason. Plain values; no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageCount:
    """One stage of the funnel: rows in, rows kept, and drops by reason."""

    stage: str
    entered: int
    dropped: dict[str, int]

    @property
    def kept(self) -> int:
        """Rows that went on to the next stage."""
        return self.entered - sum(self.dropped.values())


@dataclass
class FunnelCounter:
    """Accumulates stage counts across batches, keeping the order in which stages first report."""

    _entered: dict[str, int] = field(default_factory=dict)
    _dropped: dict[str, Counter[str]] = field(default_factory=dict)

    def record(self, stage: str, entered: int, dropped: dict[str, int]) -> None:
        """Add one batch's counts for ``stage``."""
        self._entered[stage] = self._entered.get(stage, 0) + entered
        self._dropped.setdefault(stage, Counter()).update({k: v for k, v in dropped.items() if v})

    def stages(self) -> tuple[StageCount, ...]:
        """The funnel so far, in stage order."""
        return tuple(StageCount(s, n, dict(sorted(self._dropped[s].items()))) for s, n in self._entered.items())


def funnel_dict(stages: tuple[StageCount, ...]) -> list[dict[str, Any]]:
    """The funnel as JSON-friendly dicts (for the manifest)."""
    return [{"stage": s.stage, "entered": s.entered, "kept": s.kept, "dropped": s.dropped} for s in stages]


def render_funnel(stages: tuple[StageCount, ...]) -> str:
    """The funnel as aligned text lines: stage, in → kept, and the drop reasons."""
    width = max((len(s.stage) for s in stages), default=0)
    lines = []
    for s in stages:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(s.dropped.items(), key=lambda kv: -kv[1]))
        lines.append(f"{s.stage:<{width}}  {s.entered:>8} → {s.kept:<8}" + (f"  dropped: {reasons}" if reasons else ""))
    return "\n".join(lines)
