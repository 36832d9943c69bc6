"""An evaluation's DuckDB row is its record: written before the MLflow logging, so that MLflow failing at the end
loses nothing, and the same evaluation run again logs the recorded one instead of generating again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_world import SNAPSHOT, ScriptedBackend, answers_by_issue, make_settings, write_snapshot
from mlflow import MlflowClient

from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.instances import heldout_instances
from swerl_core.models import experiment_id
from swerl_core.runs import write_run_id
from swerl_core.store import Store


def _rows(store: Store) -> list[tuple[str, bool, str | None]]:
    with store.reading() as con:
        return [(str(i), bool(logged), run) for i, logged, run in con.execute(
            "SELECT id, mlflow_logged, mlflow_run_id FROM evaluations ORDER BY created_at").fetchall()]  # fmt: skip


def test_mlflow_failing_at_the_end_keeps_the_row_and_the_rerun_logs_it_without_evaluating_again(
    tmp_path: Path,
) -> None:
    write_snapshot(tmp_path, n_heldout=4)
    settings = make_settings(tmp_path)
    client = MlflowClient(settings.tracking_uri)
    run = client.create_run(experiment_id(client, "swerl-train", tmp_path / "mlartifacts")).info.run_id
    model = tmp_path / "checkpoints" / "grpo-run" / "checkpoint-10"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_run_id(model.parent, run)
    store = Store.for_settings(settings)
    answer = answers_by_issue(heldout_instances(settings.snapshots_dir, SNAPSHOT))
    database = tmp_path / "mlflow.db"
    healthy = database.read_bytes()

    class MlflowBreaksWhileGenerating(ScriptedBackend):
        def generate(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            out = super().generate(*args, **kwargs)
            database.write_bytes(b"not a database " * 512)  # the tracking store is gone when the logging starts
            return out

    breaking = MlflowBreaksWhileGenerating(answer)
    with pytest.raises(EvaluateError) as err:
        evaluate(settings, str(model), SNAPSHOT, store=store, backend=breaking)
    message = str(err.value)
    assert "\n" not in message and "is recorded (mean reward +1.000) but not logged to MLflow" in message, message
    assert "run the same evaluation again" in message and breaking.calls == 1
    ((evaluation_id, logged, requested),) = _rows(store)
    assert not logged and requested == run and evaluation_id in message
    assert (tmp_path / "evaluations" / evaluation_id / "predictions.jsonl").is_file()

    database.write_bytes(healthy)
    again = ScriptedBackend(answer)
    report = evaluate(settings, str(model), SNAPSHOT, store=store, backend=again)
    assert again.calls == 0, "the recorded evaluation was generated again"
    assert (report.evaluation_id, report.mlflow_run_id, report.metrics.mean_reward) == (evaluation_id, run, 1.0)
    assert _rows(store) == [(evaluation_id, True, run)]
    logged_run = client.get_run(run)
    assert logged_run.data.metrics["heldout.mean_reward"] == 1.0
    assert client.list_artifacts(run, f"evaluations/{evaluation_id}"), "the predictions were not logged"
    fresh = evaluate(settings, str(model), SNAPSHOT, store=store, backend=again)  # logged: a new one is run
    assert again.calls == 1 and fresh.evaluation_id != evaluation_id and len(_rows(store)) == 2


def test_a_recorded_evaluation_whose_predictions_are_gone_is_dropped_and_evaluated_again(tmp_path: Path) -> None:
    write_snapshot(tmp_path, n_heldout=4)
    settings = make_settings(tmp_path)
    model = tmp_path / "checkpoints" / "run" / "checkpoint-1"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    store = Store.for_settings(settings)
    answer = answers_by_issue(heldout_instances(settings.snapshots_dir, SNAPSHOT))
    database = tmp_path / "mlflow.db"
    evaluate(settings, str(model), SNAPSHOT, store=store, backend=ScriptedBackend(answer))  # creates mlflow.db
    healthy = database.read_bytes()

    class MlflowBreaksWhileGenerating(ScriptedBackend):
        def generate(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            out = super().generate(*args, **kwargs)
            database.write_bytes(b"not a database " * 512)
            return out

    with pytest.raises(EvaluateError, match="is recorded"):
        evaluate(settings, str(model), SNAPSHOT, store=store, backend=MlflowBreaksWhileGenerating(answer))
    database.write_bytes(healthy)
    lost = [i for i, logged, _ in _rows(store) if not logged]
    (tmp_path / "evaluations" / lost[0] / "predictions.jsonl").unlink()
    again = ScriptedBackend(answer)
    report = evaluate(settings, str(model), SNAPSHOT, store=store, backend=again)
    assert again.calls == 1 and report.evaluation_id != lost[0], "a row that can never be logged blocked the model"
    assert all(logged for _, logged, _ in _rows(store)) and lost[0] not in [i for i, _, _ in _rows(store)]
