"""Per-stage comparison: a checkpoint's evaluation is drawn and logged beside the evaluations of the models its
training run descends from (base → SFT → GRPO), found through the runs' ``base_model`` params."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eval_world import SNAPSHOT, ScriptedBackend, answers_by_issue, make_settings, write_snapshot
from mlflow import MlflowClient

from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.instances import heldout_instances
from swerl_core.lineage import model_lineage
from swerl_core.models import experiment_id
from swerl_core.runs import write_run_id
from swerl_core.store import Store


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_snapshot(tmp_path, n_heldout=4)
    return tmp_path


@pytest.fixture
def client(home: Path) -> MlflowClient:
    return MlflowClient(make_settings(home).tracking_uri)


def _model(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return path


def _trained(client: MlflowClient, home: Path, run: str, folder: str, stage: str, base: str) -> tuple[Path, str]:
    """A checkpoint folder of training run ``run`` whose MLflow run records ``stage`` and ``base``."""
    mlflow_run = client.create_run(experiment_id(client, "swerl-train", home / "mlartifacts"), run_name=run)
    client.log_param(mlflow_run.info.run_id, "base_model", base)
    client.log_param(mlflow_run.info.run_id, "stage", stage)
    write_run_id(home / "checkpoints" / run, mlflow_run.info.run_id)
    return _model(home / "checkpoints" / run / folder), mlflow_run.info.run_id


def _three_stages(client: MlflowClient, home: Path, tag: str, folder: str) -> tuple[Path, Path, Path, str]:
    """A base model, an SFT run started from it and a GRPO run started from the SFT's final/: their models
    and the GRPO run's MLflow id."""
    base = _model(home / "models" / "tiny-0")
    sft, _ = _trained(client, home, f"{tag}-sft", "final", "sft", str(base))
    grpo, grpo_run = _trained(client, home, f"{tag}-grpo", folder, "grpo", str(sft))
    return base, sft, grpo, grpo_run


def _backend(home: Path, wrong: int) -> ScriptedBackend:
    instances = heldout_instances(home / "snapshots", SNAPSHOT)
    return ScriptedBackend(answers_by_issue(instances, frozenset(i.instance_id for i in instances[:wrong])))


def _document(client: MlflowClient, run_id: str, evaluation_id: str) -> dict[str, Any]:
    path = client.download_artifacts(run_id, f"evaluations/{evaluation_id}/metrics.json")
    return dict(json.loads(Path(path).read_text()))


def test_a_grpo_checkpoint_is_compared_with_its_sft_base_and_the_model_sft_started_from(
    home: Path, client: MlflowClient, tmp_path: Path
) -> None:
    settings = make_settings(home)
    base, sft, grpo, grpo_run = _three_stages(client, home, "demo", "checkpoint-2")
    assert model_lineage(client, grpo_run) == [(base.resolve(), None), (sft.resolve(), "sft")]

    with Store.open(tmp_path / "swerl.duckdb") as store:
        first = evaluate(settings, str(base.resolve()), SNAPSHOT, store=store, backend=_backend(home, wrong=4))
        evaluate(settings, str(sft.resolve()), SNAPSHOT, store=store, backend=_backend(home, wrong=2))
        report = evaluate(settings, str(grpo.resolve()), SNAPSHOT, store=store, backend=_backend(home, wrong=1))

    assert report.mlflow_run_id == grpo_run, "an endpoint-style evaluation of a checkpoint logs into its training run"
    assert first.metrics.mean_reward == -1.0 and report.metrics.mean_reward == 0.5
    gains = {k: v for k, v in client.get_run(grpo_run).data.metrics.items() if "gain_over_base" in k}
    assert gains["heldout.gain_over_base.mean_reward"] == pytest.approx(0.5 - 0.0)  # SFT: 2 of 4 right
    assert gains["heldout.gain_over_base.format_error_rate"] == pytest.approx(0.25 - 0.5)
    document = _document(client, grpo_run, report.evaluation_id)
    labels = [(b["label"], b["model_ref"], b["mean_reward"]) for b in document["baselines"]]
    assert labels == [
        ("base: models/tiny-0", str(base.resolve()), -1.0),
        ("sft: demo-sft/final", str(sft.resolve()), 0.0),
    ]
    files = {a.path for a in client.list_artifacts(grpo_run, f"evaluations/{report.evaluation_id}")}
    assert f"evaluations/{report.evaluation_id}/comparison.png" in files


def test_without_the_direct_base_evaluated_no_gain_is_logged_against_an_older_stage(
    home: Path, client: MlflowClient, tmp_path: Path
) -> None:
    settings = make_settings(home)
    base, _, grpo, grpo_run = _three_stages(client, home, "gap", "final")
    with Store.open(tmp_path / "swerl.duckdb") as store:
        evaluate(settings, str(base), SNAPSHOT, store=store, backend=_backend(home, wrong=4))
        report = evaluate(settings, str(grpo), SNAPSHOT, store=store, backend=_backend(home, wrong=0))
    assert [b["label"] for b in _document(client, grpo_run, report.evaluation_id)["baselines"]] == [
        "base: models/tiny-0"
    ]
    assert not [k for k in client.get_run(grpo_run).data.metrics if "gain_over_base" in k]


def test_an_endpoint_model_name_is_not_taken_for_a_checkpoint_in_the_working_directory(
    home: Path, client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run = _trained(client, home, "here", "final", "sft", "meta-llama/Llama-3.1-8B")
    monkeypatch.chdir(home / "checkpoints" / "here")  # holds the run's mlflow_run_id file
    with Store.open(tmp_path / "swerl.duckdb") as store:
        report = evaluate(make_settings(home), "gpt-4o", SNAPSHOT, store=store, backend=_backend(home, wrong=0))
    assert report.mlflow_run_id != run and report.model_ref == "gpt-4o"


def test_a_stage_evaluated_under_another_protocol_is_left_out_of_the_comparison(
    home: Path, client: MlflowClient, tmp_path: Path
) -> None:
    base = _model(home / "models" / "tiny-0")
    sft, sft_run = _trained(client, home, "sft-1", "final", "sft", str(base))
    with Store.open(tmp_path / "swerl.duckdb") as store:
        limited = make_settings(home, **{"evaluate.limit": 2})
        evaluate(limited, str(base.resolve()), SNAPSHOT, store=store, backend=_backend(home, wrong=2))
        report = evaluate(make_settings(home), str(sft), SNAPSHOT, store=store, backend=_backend(home, wrong=0))
    assert _document(client, sft_run, report.evaluation_id)["baselines"] == []
    assert not [k for k in client.get_run(sft_run).data.metrics if "gain_over_base" in k]


def test_the_lineage_walk_stops_at_a_hub_id_an_unknown_run_and_a_cycle(
    home: Path, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, from_hub = _trained(client, home, "hub-sft", "final", "sft", "meta-llama/Llama-3.1-8B")
    assert model_lineage(client, from_hub) == []
    _model(home / "meta-llama" / "Llama-3.1-8B")  # a folder of that name where the evaluation happens to run
    monkeypatch.chdir(home)
    assert model_lineage(client, from_hub) == [], "a hub id was taken for a local folder"
    assert model_lineage(client, None) == [] and model_lineage(client, "0" * 32) == []

    # A run whose base is its own final/ (a resumed run pointed at itself) is listed once, not forever.
    looped = home / "checkpoints" / "loop" / "final"
    _, loop_run = _trained(client, home, "loop", "final", "grpo", str(looped))  # creates final/
    assert model_lineage(client, loop_run) == [(looped.resolve(), "grpo")]

    # A base saved by a run another tracking server recorded: listed, and the walk ends there.
    stray = _model(home / "checkpoints" / "elsewhere" / "final")
    write_run_id(stray.parent, "f" * 32)
    _, child = _trained(client, home, "child", "final", "grpo", str(stray))
    assert model_lineage(client, child) == [(stray.resolve(), None)]


def test_the_commit_recorded_is_swerls_own_wherever_the_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    import swerl_core
    from swerl_core.lineage import git_sha

    source = Path(swerl_core.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=False)
    monkeypatch.chdir(tmp_path)  # where a Prefect worker runs a flow: a temporary folder, no repository
    assert git_sha() == (head.stdout.strip() if head.returncode == 0 else "unknown")
    assert git_sha(tmp_path) == "unknown"
