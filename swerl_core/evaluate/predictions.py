"""Predictions files: JSON lines in SWE-bench's predictions format plus swerl's own fields.

Each line has ``instance_id``, ``model_name_or_path`` and ``model_patch`` (a unified diff, empty when
the answer did not apply) — what the SWE-bench harness reads — followed by ``sample``, ``reward``,
``error``, ``applied``, ``refused_paths``, ``tokens``, ``raw_output`` and, for an instance whose tests
were run, ``resolution`` (``resolved`` or why not: :mod:`swerl_core.evaluate.resolved`) and
``resolution_detail``. The harness takes one
prediction per instance, so :func:`harness_predictions` keeps sample 0 (the greedy one when K = 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from swerl_core.evaluate.metrics import SampleResult
from swerl_core.execution.resolution import NOT_RUN


def prediction_record(result: SampleResult, model_name: str) -> dict[str, object]:
    """One predictions line for ``result``."""
    return {
        "instance_id": result.instance_id,
        "model_name_or_path": model_name,
        "model_patch": result.model_patch,
        "sample": result.sample,
        "reward": result.reward,
        "error": result.error,
        "applied": result.applied,
        "refused_paths": list(result.refused_paths),
        "tokens": result.tokens,
        "raw_output": result.output,
        **(
            {"resolution": result.resolution, "resolution_detail": result.resolution_detail}
            if result.resolution
            else {}
        ),
    }


def write_predictions(path: Path, results: Iterable[SampleResult], model_name: str) -> Path:
    """Write every sample's predictions line to ``path`` (JSONL); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps(prediction_record(result, model_name)) + "\n")
    return path


def harness_predictions(path: Path, results: Sequence[SampleResult], model_name: str) -> Path:
    """Write the first sample of each instance only (the harness scores one patch per instance)."""
    return write_predictions(path, [r for r in results if r.sample == 0], model_name)


def read_predictions(path: Path) -> list[dict[str, object]]:
    """The lines of a predictions file as dicts."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_rewards(path: Path) -> dict[str, tuple[float, ...]]:
    """Each instance's sample rewards (in sample order) from a predictions file; empty when it is gone.

    This is what the gate pairs: two evaluations under one protocol have the same instance ids.
    """
    rows = _rows(path)
    return per_instance([(str(row["instance_id"]), int(row["sample"]), float(row["reward"])) for row in rows])


def sample_resolved(path: Path) -> dict[str, tuple[float, ...]]:
    """Each judged instance's samples as 1.0 (resolved) or 0.0, in sample order, from a predictions file: what the
    gate pairs on ``registry.gate_on: resolved``. Samples never run (no tests, or ``not_run``) are left out."""
    return per_instance(
        [
            (str(row["instance_id"]), int(row["sample"]), resolved_value(row["resolution"]))
            for row in _rows(path)
            if row.get("resolution") not in (None, NOT_RUN)
        ]
    )


def resolved_value(resolution: str | None) -> float:
    """A judged sample's resolved flag as a number: 1.0 for ``resolved``, else 0.0."""
    return 1.0 if resolution == "resolved" else 0.0


def per_instance(values: Iterable[tuple[str, int, float]]) -> dict[str, tuple[float, ...]]:
    """``(instance id, sample, value)`` triples grouped by instance, each group in sample order."""
    by_instance: dict[str, list[tuple[int, float]]] = {}
    for instance_id, sample, value in values:
        by_instance.setdefault(instance_id, []).append((sample, value))
    return {key: tuple(value for _, value in sorted(rows)) for key, rows in by_instance.items()}


def _rows(path: Path) -> list[dict[str, Any]]:
    return [dict(line) for line in read_predictions(path)] if path.is_file() else []
