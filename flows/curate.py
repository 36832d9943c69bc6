"""The ``curate`` flow: a versioned snapshot from the store, with its funnel and a dataset summary."""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.bridge import flow_settings, swerl_logs
from swerl_core.curate import CurateRequest, Snapshot
from swerl_core.curate import run as curate_store


@flow(name="curate", flow_run_name="curate {name}")
def curate(name: str = "snapshot", heldout_after: datetime | None = None) -> Snapshot:
    """Curate every ingested PR into a snapshot (the same input and config give the same snapshot id)."""
    with swerl_logs():
        snapshot = curate_store(flow_settings(), CurateRequest(name, heldout_after))
        rows = [
            {"stage": s.stage, "in": s.entered, "kept": s.kept, "dropped": _reasons(s.dropped)} for s in snapshot.funnel
        ]
        create_table_artifact(rows, key="curation-funnel", description=f"Curation funnel of snapshot {snapshot.id}")
        state = "new" if snapshot.created else "unchanged input: existing snapshot reused"
        create_markdown_artifact(
            f"### Snapshot `{snapshot.id}` ({state})\n\n"
            f"| split | rows |\n|---|---|\n| train | {snapshot.train_rows} |\n"
            f"| held-out | {snapshot.heldout_rows} |\n\n"
            f"Files: `{snapshot.path}`" + (f", published to `{snapshot.uri}`" if snapshot.uri else ""),
            key="dataset-summary",
            description=f"Dataset summary of snapshot {snapshot.id}",
        )
        return snapshot


def _reasons(dropped: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items())) or "-"
