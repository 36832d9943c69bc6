"""Predictions files: JSON lines in SWE-bench's predictions format plus swerl's own fields.

Each line has ``instance_id``, ``model_name_or_path`` and ``model_patch`` (a unified diff, empty when
the answer did not apply) — what the SWE-bench harness reads — followed by ``sample``, ``reward``,
``error``, ``applied``, ``refused_paths``, ``tokens`` and ``raw_output``. The harness takes one
prediction per instance, so :func:`harness_predictions` keeps sample 0 (the greedy one when K = 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from swerl_core.evaluate.metrics import SampleResult


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
    if not path.is_file():
        return {}
    by_instance: dict[str, list[tuple[int, float]]] = {}
    for line in read_predictions(path):
        row: dict[str, Any] = dict(line)
        by_instance.setdefault(str(row["instance_id"]), []).append((int(row["sample"]), float(row["reward"])))
    return {key: tuple(r for _, r in sorted(rows)) for key, rows in by_instance.items()}
