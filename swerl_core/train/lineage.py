"""Dataset lineage in MLflow: the snapshot a run trained or was evaluated on, as an MLflow dataset input.

The input names the snapshot split's Parquet file (its URI is the dataset source), carries the file's
SHA-256 digest, its row count and columns, so the MLflow UI shows exactly which data a run used and
two runs on the same data show the same digest. Only metadata goes to MLflow, never the rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from swerl_core.snapshots import snapshot_dir

CONTEXTS = {"train": "training", "heldout": "evaluation"}


def parquet_digest(path: Path) -> str:
    """The SHA-256 of a file, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def log_snapshot_input(tracking_uri: str, run_id: str, snapshots_dir: Path, snapshot_id: str, split: str) -> str:
    """Record ``split`` of snapshot ``snapshot_id`` as a dataset input of MLflow run ``run_id``; returns the digest."""
    import pyarrow.parquet as pq
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag

    path = (snapshot_dir(snapshots_dir, snapshot_id) / f"{split}.parquet").resolve()
    digest = parquet_digest(path)
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
