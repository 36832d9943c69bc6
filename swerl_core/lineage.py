"""Where a run came from: the code's commit, the snapshot it trained or was evaluated on, the models it descends from.

A snapshot is recorded as an MLflow dataset input: the input names the snapshot split's Parquet file
(its URI is the dataset source), carries the file's SHA-256 digest, its row count and columns, so the
MLflow UI shows exactly which data a run used and two runs on the same data show the same digest. Only
metadata goes to MLflow, never the rows. A model's ancestry is read back from the ``base_model`` and
``stage`` params every training run logs; the commit is :func:`git_sha`. Training writes lineage, evaluation
and the registry read it; this module never decides anything about a run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from swerl_core.config import Settings
from swerl_core.runs import read_run_id
from swerl_core.snapshots import file_sha256, snapshot_dir

CONTEXTS = {"train": "training", "heldout": "evaluation"}


def git_sha(cwd: Path | None = None) -> str:
    """The commit checked out in ``cwd``, by default the one swerl's own code comes from, wherever the process runs
    (a Prefect worker starts flow runs in a temporary folder); ``"unknown"`` outside a repository (an installed
    wheel) or before the first commit."""
    where = cwd if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def log_snapshot_input(tracking_uri: str, run_id: str, snapshots_dir: Path, snapshot_id: str, split: str) -> str:
    """Record ``split`` of snapshot ``snapshot_id`` as a dataset input of MLflow run ``run_id``; returns the digest."""
    import pyarrow.parquet as pq
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag

    path = (snapshot_dir(snapshots_dir, snapshot_id) / f"{split}.parquet").resolve()
    digest = file_sha256(path)
    meta = pq.read_metadata(path)
    dataset = Dataset(
        name=f"{snapshot_id}/{split}",
        digest=digest[:32],
        source_type="local",
        source=json.dumps({"uri": path.as_uri()}),
        profile=json.dumps({"num_rows": meta.num_rows, "columns": meta.schema.names, "sha256": digest}),
    )
    tags = [InputTag("mlflow.data.context", CONTEXTS.get(split, split))]
    MlflowClient(tracking_uri).log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])
    return digest


def model_lineage(client: Any, run_id: str | None, max_depth: int = 8) -> list[tuple[Path, str | None]]:
    """The local model directories training run ``run_id`` descends from, oldest first, each with its stage.

    The run's ``base_model`` param is its direct base; when that directory was saved by another training
    run (an SFT warm start's ``final/``), that run's base comes before it, and so on. The stage is the
    saving run's ``stage`` param, ``None`` for a model no run here trained (a base model). The walk stops
    at a base that is not a model directory given by absolute path (the trainer records local bases
    resolved, so anything else is a hub id), at a run this tracking server does not have, at a cycle, or
    after ``max_depth`` models. Other MLflow errors (server down, permission) are raised.
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[str] = set()
    while run_id and run_id not in seen and len(found) < max_depth:
        seen.add(run_id)
        params = run_params(client, run_id)
        base = Path((params or {}).get("base_model", "") or "no-base")
        if not base.is_absolute() or not (base / "config.json").is_file():
            break
        model_dir = base.resolve()
        run_id = read_run_id(model_dir.parent)
        saved_by = run_params(client, run_id) if run_id else None
        found.append((model_dir, None if saved_by is None else saved_by.get("stage")))
        run_id = run_id if saved_by is not None else None
    return found[::-1]


def ancestor_models(settings: Settings, run_dir: Path) -> list[tuple[Path, str | None]]:
    """The model directories the training run in ``run_dir`` descends from, oldest first, each with the stage that
    trained it (``None``: a base model): what its evaluations are drawn beside (:func:`model_lineage`). Empty when
    ``evaluate.lineage`` is off or the run recorded no MLflow run."""
    from mlflow import MlflowClient

    run_id = read_run_id(run_dir)
    if not settings.evaluate.lineage or run_id is None:
        return []
    return model_lineage(MlflowClient(settings.tracking_uri), run_id)


def direct_base(tracking_uri: str, run_id: str | None) -> Path | None:
    """The model directory training run ``run_id`` started from (its direct base), or ``None`` when unknown."""
    from mlflow import MlflowClient

    ancestors = model_lineage(MlflowClient(tracking_uri), run_id)
    return ancestors[-1][0] if ancestors else None


def run_stage(tracking_uri: str, run_dir: Path) -> str | None:
    """The stage (``sft``, ``grpo``) the training run in ``run_dir`` recorded, or ``None`` when unknown."""
    from mlflow import MlflowClient

    run_id = read_run_id(run_dir)
    params = run_params(MlflowClient(tracking_uri), run_id) if run_id else None
    return (params or {}).get("stage")


def run_params(client: Any, run_id: str) -> dict[str, str] | None:
    """The params of MLflow run ``run_id``; ``None`` when this tracking server has no such run.

    Any other MLflow error (server down, permission) is raised.
    """
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_run(run_id).data.params)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
