"""The evaluation protocol: what an evaluation measured and how, reduced to one comparable fingerprint.

Two evaluations may stand in for each other (at the gate, in the comparison plot) only when their
protocols are equal: the same snapshot and split, the same instances in the same order (so
``evaluate.limit`` counts), the same K and the decoding settings that change the numbers —
``max_new_tokens`` always, ``temperature``, ``top_p`` and ``seed`` only when sampling (K > 1), since
greedy decoding ignores them. Batching, concurrency, timeouts, retries and the backend change how fast
an evaluation runs, not what it measures, so they stay out. This module computes; it never stores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from swerl_core.config import Settings
from swerl_core.config.evaluate import EvaluateConfig
from swerl_core.evaluate.instances import EvalInstance, heldout_instances

HELDOUT, SWEBENCH = "heldout", "swebench-verified"


@dataclass(frozen=True)
class EvalProtocol:
    """Everything that decides an evaluation's numbers besides the model; equal protocols compare."""

    snapshot_id: str
    split: str
    samples: int
    n_instances: int
    instances_sha256: str  # of the instance ids in evaluation order
    max_new_tokens: int
    temperature: float | None = None  # None: greedy (K = 1)
    top_p: float | None = None
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The protocol as plain JSON-ready values."""
        return asdict(self)

    @property
    def fingerprint(self) -> str:
        """A short stable hash of :meth:`as_dict`: stored with every evaluation and model version."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def evaluation_protocol(
    cfg: EvaluateConfig, snapshot_id: str, split: str, instances: Sequence[EvalInstance]
) -> EvalProtocol:
    """The protocol of evaluating ``instances`` of ``snapshot_id`` with ``cfg``."""
    ids = "\n".join(i.instance_id for i in instances)
    sampled = not cfg.greedy
    return EvalProtocol(
        snapshot_id=snapshot_id,
        split=split,
        samples=cfg.samples,
        n_instances=len(instances),
        instances_sha256=hashlib.sha256(ids.encode()).hexdigest(),
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature if sampled else None,
        top_p=cfg.top_p if sampled else None,
        seed=cfg.seed if sampled else None,
    )


def heldout_protocol(settings: Settings, snapshot_id: str) -> EvalProtocol:
    """The protocol :func:`swerl_core.evaluate.evaluation.evaluate` follows on ``snapshot_id`` with ``settings``."""
    from swerl_core.bucket import ensure_snapshot

    ensure_snapshot(settings, snapshot_id)  # a fresh machine with shared storage registers too
    instances = heldout_instances(settings.snapshots_dir, snapshot_id, settings.evaluate.limit)
    return evaluation_protocol(settings.evaluate, snapshot_id, HELDOUT, instances)
