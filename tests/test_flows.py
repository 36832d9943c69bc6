"""The Prefect flows on the sample world under one local Prefect API (``prefect_test_harness``, started once):
retrain end to end with the tiny model, the stop on an unchanged snapshot, the triggered evaluate-register on
an already registered run, and the ingest task's retry policy (transient failures only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flow_world import TOKEN, flow_env, tiny_model, write_recipe

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld

prefect = pytest.importorskip("prefect")


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[None]:
    # Module-scoped: the harness overrides PREFECT_API_URL in-process, so it must be gone before tests that
    # talk to a real server of their own (test_stack) run in the same session.
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def world_env(
    prefect_api: None, sample_world: SampleWorld, swerl_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGitHub]:
    with FakeGitHub(sample_world, token=TOKEN) as server:
        for key, value in flow_env(swerl_home, server, sorted(sample_world.repos)).items():
            monkeypatch.setenv(key, value)
        yield server


def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts() if a.key}


@pytest.mark.slow
def test_retrain_trains_evaluates_registers_then_stops_on_unchanged_snapshot(
    world_env: FakeGitHub, swerl_home: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flows.retrain import RetrainOutcome, retrain
    from swerl_core.config import load_settings

    recipe = write_recipe(tmp_path, tiny_model(tmp_path))
    state = retrain(str(recipe), sft_warm_start=False, return_state=True)  # SFT runs in make demo
    assert state.is_completed(), state.message
    outcome = state.result()
    assert isinstance(outcome, RetrainOutcome) and outcome.registration is not None
    assert outcome.registration.version == "1" and "champion" in outcome.registration.aliases

    settings = load_settings()
    client = MlflowClient(settings.tracking_uri)
    assert str(client.get_model_version_by_alias(settings.registry.model_name, "champion").version) == "1"
    experiments = {e.name for e in client.search_experiments()}
    assert "Default" not in experiments or not client.search_runs(["0"]), "a run landed in the Default experiment"

    expected = {"ingest-summary", "curation-funnel", "dataset-summary", "training-progress-grpo",
                "mlflow-training-run", "evaluation-checkpoint-1", "evaluation-checkpoint-2",
                "gate-decision", "retrain-summary"}  # fmt: skip
    assert expected <= _artifact_keys()
    run_dir = settings.checkpoints_dir / outcome.trained_run
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]

    again = retrain(str(recipe), sft_warm_start=False, return_state=True)
    assert again.is_completed() and "unchanged" in again.message, again.message
    assert again.result().trained_run is None


@pytest.mark.slow
def test_ingest_task_retries_a_transient_failure_but_not_a_bad_token(
    world_env: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    from flows.ingest import ingest

    monkeypatch.setenv("SWERL_GITHUB__MAX_RETRIES", "0")
    world_env.inject(r"/repos/[^/]+/[^/]+$", status=502, times=1)
    state = ingest(return_state=True)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        tasks = [t for t in client.read_task_runs() if t.flow_run_id == state.state_details.flow_run_id]
    assert max(t.run_count for t in tasks) == 2, "the 502 was not retried exactly once"

    monkeypatch.setenv("GITHUB_TOKEN", "wrong-token")
    failed = ingest(return_state=True)
    assert failed.is_failed()
    with get_client(sync_client=True) as client:
        tasks = [t for t in client.read_task_runs() if t.flow_run_id == failed.state_details.flow_run_id]
    assert [t.run_count for t in tasks] == [1], "a rejected token must not be retried"


_HOLD_STORE = """
import sys, time
from swerl_core.store import Store
with Store.open(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(8)
"""


@pytest.mark.slow
def test_ingest_waits_for_another_process_writing_the_store(world_env: FakeGitHub, swerl_home: Path) -> None:
    import subprocess
    import sys

    from flows.ingest import ingest
    from swerl_core.config import load_settings

    db = load_settings().db_path
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_STORE, str(db)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    assert holder.poll() is None, "the other writer let go before ingest started"
    state = ingest(return_state=True)
    assert state.is_completed(), state.message
    assert holder.wait(timeout=60) == 0
