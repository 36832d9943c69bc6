"""Evaluate's table: ``evaluations``, one row per evaluation of a model on a snapshot under a protocol.

Evaluation writes its row once it has the results, before logging them to MLflow (nothing is held while it
generates), and marks it logged after; registration and the lineage plots read the newest row of a model to reuse
an evaluation instead of running it again, and a rerun finds a row never logged to finish its logging. This module
must never write another stage's table.
"""

from __future__ import annotations

import duckdb

from swerl_core.store.records import EvaluationRecord
from swerl_core.store.tables import StageTables, insert_row, writes


class EvaluationTable(StageTables):
    """The ``evaluations`` rows evaluate writes and registration reads: ``store.evaluations``."""

    @writes
    def record(self, con: duckdb.DuckDBPyConnection, record: EvaluationRecord) -> None:
        """Insert one evaluation's row."""
        insert_row(con, "evaluations", record)

    @writes
    def discard(self, con: duckdb.DuckDBPyConnection, evaluation_id: str) -> None:
        """Delete evaluation ``evaluation_id``'s row (one that can never be logged: its predictions are gone)."""
        con.execute("DELETE FROM evaluations WHERE id = ?", [evaluation_id])

    @writes
    def mark_logged(self, con: duckdb.DuckDBPyConnection, evaluation_id: str, mlflow_run_id: str) -> None:
        """Record that evaluation ``evaluation_id`` is logged to MLflow run ``mlflow_run_id``."""
        con.execute(
            "UPDATE evaluations SET mlflow_logged = TRUE, mlflow_run_id = ? WHERE id = ?",
            [mlflow_run_id, evaluation_id],
        )

    def latest(
        self,
        snapshot_id: str,
        samples: int,
        protocol: str,
        *,
        model_ref: str | None = None,
        version: tuple[str, str] | None = None,
        unlogged: bool = False,
    ) -> dict[str, object] | None:
        """The newest row of a model (by ``model_ref`` or ``(name, version)``) under ``protocol``; with
        ``unlogged``, the newest of those whose MLflow logging never finished.

        Rows of other protocols and rows recorded before protocols were (no fingerprint) never match;
        a store whose database does not exist yet has none.
        """
        if (model_ref is None) == (version is None):
            raise ValueError("give exactly one of model_ref and version")
        if not self.store.path.exists():
            return None
        where, args = (
            ("model_ref = ?", [model_ref])
            if model_ref is not None
            else ("model_name = ? AND model_version = ?", list(version or ()))
        )
        # The unlogged lookup starts every evaluation: through a write session, so that a database from before
        # migration 6 is upgraded here, as the evaluation's own row would upgrade it (a read-only one refuses it).
        with self.store.writing() if unlogged else self.store.reading() as con:
            logged = " AND mlflow_logged IS FALSE" if unlogged else ""
            cursor = con.execute(
                f"SELECT * FROM evaluations WHERE {where} AND snapshot_id = ? AND samples = ? AND protocol = ?"
                f"{logged} ORDER BY created_at DESC LIMIT 1",
                [*args, snapshot_id, samples, protocol],
            )
            rows = cursor.fetchall()
            return dict(zip([d[0] for d in cursor.description], rows[0], strict=True)) if rows else None
