"""The evaluation protocol: what an evaluation measured and how, reduced to one comparable fingerprint.

Two evaluations may stand in for each other (at the gate, in the comparison plot) only when their
protocols are equal: the same snapshot and split, the same instances in the same order (so
``evaluate.limit`` counts), the same K and the decoding settings that change the numbers —
``max_new_tokens`` always, ``temperature``, ``top_p`` and ``seed`` only when sampling (K > 1), since
greedy decoding ignores them — and, when executable instances' answers are run against their tests,
what the verdicts depend on (the environment declarations and the sandbox's limits). Batching,
concurrency, timeouts, retries and the backend change how fast an evaluation runs, not what it
measures, so they stay out. This module computes; it never stores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from swerl_core.config import Settings
from swerl_core.evaluate.instances import EvalInstance, heldout_instances
from swerl_core.execution.environments import declared_repos, test_limits

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
    execution: str | None = None  # digest of what resolved verdicts depend on; None: no test runs

    def as_dict(self) -> dict[str, Any]:
        """The protocol as plain JSON-ready values (``execution`` only when tests run, so that the fingerprints of
        evaluations without them are those recorded before execution existed)."""
        values = asdict(self)
        if values["execution"] is None:
            del values["execution"]
        return values

    @property
    def fingerprint(self) -> str:
        """A short stable hash of :meth:`as_dict`: stored with every evaluation and model version."""
        return _digest(self.as_dict())


def evaluation_protocol(
    settings: Settings, snapshot_id: str, split: str, instances: Sequence[EvalInstance]
) -> EvalProtocol:
    """The protocol of evaluating ``instances`` of ``snapshot_id`` with ``settings``."""
    cfg = settings.evaluate
    ids = "\n".join(i.instance_id for i in instances)
    execution = execution_digest(settings, instances)
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
        execution=None if execution is None else _digest(execution),
    )


def execution_digest(settings: Settings, instances: Sequence[EvalInstance]) -> dict[str, Any] | None:
    """What the resolved verdicts of ``instances`` depend on besides the answers (the protocol records it): the
    environment declarations of their executable repositories and the test runs' limits; None when nothing runs."""
    if not settings.evaluate.execute:
        return None
    environments = declared_repos(settings, {i.repo for i in instances if i.execution is not None})
    if not environments:
        return None
    return {"environments": environments, "limits": test_limits(settings.execution)}


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def heldout_protocol(settings: Settings, snapshot_id: str) -> EvalProtocol:
    """The protocol :func:`swerl_core.evaluate.evaluation.evaluate` follows on ``snapshot_id`` with ``settings``."""
    from swerl_core.bucket import ensure_snapshot

    ensure_snapshot(settings, snapshot_id)  # a fresh machine with shared storage registers too
    instances = heldout_instances(settings.snapshots_dir, snapshot_id, settings.evaluate.limit)
    return evaluation_protocol(settings, snapshot_id, HELDOUT, instances)
