"""The Prefect flows on the sample world under one local Prefect API (``prefect_test_harness``, started once):
retrain end to end with the tiny model, evaluating again (every evaluation reused) and registering again (the
run's version returned) after it, the stop on an unchanged snapshot, the train flow on Kubernetes, a train flow run
failed by its rollout server and resumed by the next one, and the ingest task's retry policy (transient failures
only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flow_world import TOKEN, flow_env, tiny_model, write_recipe

from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld

pytestmark = pytest.mark.heavy(90)  # seconds in make test: started first (tests/conftest.py)

prefect = pytest.importorskip("prefect")
RECIPE_8B = Path(__file__).resolve().parents[1] / "deployments" / "configs" / "llama3-8b.yaml"


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


def _table(key: str) -> list[dict[str, Any]]:
    """The rows of the newest table artifact ``key``."""
    from prefect.client.orchestration import get_client

    from swerl_core.stack import artifact_rows

    with get_client(sync_client=True) as client:
        newest = max((a for a in client.read_artifacts() if a.key == key), key=lambda a: a.created)
        return artifact_rows(newest.data)


@pytest.mark.slow
def test_retrain_trains_evaluates_registers_then_stops_on_unchanged_snapshot(
    world_env: FakeGitHub, swerl_home: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flows.retrain import RetrainOutcome, retrain
    from swerl_core.config import load_settings
    from swerl_core.runs import read_run_id

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
                "mlflow-training-run", "model-lineage", "evaluation-checkpoint-1", "evaluation-checkpoint-2",
                "gate-decision", "retrain-summary", "effective-configuration", "held-out-evaluations",
                "retrain-registration"}  # fmt: skip
    assert expected <= _artifact_keys()
    evaluations, registered = _table("held-out-evaluations"), _table("retrain-registration")
    assert [(row["stage"], row["model"]) for row in evaluations][-2:] == [
        ("grpo", "checkpoint-1"),
        ("grpo", "checkpoint-2"),
    ]
    assert evaluations[0]["stage"] == "base" and all(row["90% interval"].startswith("[") for row in evaluations)
    assert len(registered) == 1 and registered[0]["version"] == "1" and registered[0]["gate"] == "pass"
    assert Path(registered[0]["registered checkpoint"]).name in {"checkpoint-1", "checkpoint-2"}
    run_dir = settings.checkpoints_dir / outcome.trained_run
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert sorted(Path(r.model_ref).name for r in outcome.evaluations) == ["checkpoint-1", "checkpoint-2"]
    assert not any(r.reused for r in outcome.evaluations)
    # The base model was evaluated first, under the same protocol, and each checkpoint logged its gain over it.
    training = client.get_run(read_run_id(run_dir)).data
    assert {"heldout.gain_over_base.mean_reward", "heldout.gain_over_base.apply_rate"} <= set(training.metrics)
    assert training.params["settings.evaluate.limit"] == "3" and training.params["grpo.max_steps"] == "2"

    from flows.evaluate import evaluate
    from flows.register import register

    again = evaluate(outcome.trained_run, outcome.snapshot_id)
    assert all(r.reused for r in again) and {r.evaluation_id for r in again} == {
        r.evaluation_id for r in outcome.evaluations
    }, "an evaluation under the same protocol ran twice"
    twice = register(str(run_dir / "checkpoint-1"), outcome.snapshot_id)
    assert (twice.version, twice.created, twice.verdict.decision) == ("1", False, "pass")
    assert [str(v.version) for v in client.search_model_versions(f"name = '{settings.registry.model_name}'")] == ["1"]

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


@pytest.mark.slow
def test_evaluate_judges_the_checkpoints_even_when_the_base_model_no_longer_loads(
    world_env: FakeGitHub, swerl_home: Path, tmp_path: Path
) -> None:
    import shutil

    from mlflow import MlflowClient

    from flows.evaluate import evaluate
    from swerl_core.config import load_settings
    from swerl_core.demo.sample_snapshot import write_sample_snapshot
    from swerl_core.models import experiment_id
    from swerl_core.runs import write_run_id

    settings = load_settings()
    write_sample_snapshot(swerl_home, "flow-eval-v1", n_train=2, n_heldout=2)
    broken = swerl_home / "models" / "gone"  # its weights were deleted after training
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    client = MlflowClient(settings.tracking_uri)
    run = client.create_run(experiment_id(client, "swerl-train", swerl_home / "mlartifacts"), run_name="grpo-x")
    client.log_param(run.info.run_id, "base_model", str(broken))
    write_run_id(settings.checkpoints_dir / "grpo-x", run.info.run_id)
    shutil.copytree(tiny_model(tmp_path), settings.checkpoints_dir / "grpo-x" / "final")

    state = evaluate("grpo-x", "flow-eval-v1", return_state=True)
    assert state.is_completed(), state.message
    [report] = state.result()
    assert Path(report.model_ref).name == "final" and report.metrics.n_instances == 2
    logs = _flow_logs(state.state_details.flow_run_id)
    assert any("left out of the comparison" in line and str(broken) in line for line in logs), logs


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


def _pod_training(job: dict, index: int) -> list[str]:
    """What a training pod prints: a plain line, progress records and (rank 0) the result, paths under /data."""
    from swerl_core.progress import Progress
    from swerl_core.train.followed import PROGRESS_MARK, RESULT_MARK
    from swerl_core.train.result import TrainResult

    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    flag = {key: value for key, value in zip(command, command[1:], strict=False) if key.startswith("--")}
    run, snapshot = flag["--run-name"], flag["--snapshot"]
    base, run_dir = flag.get("--model", "base"), Path(f"/data/checkpoints/{run}")
    result = TrainResult(run, None, flag["--stage"], snapshot, base, run_dir, run_dir / "final", 2, 4, 0, 1.0,
                         {"reward": 0.25})  # fmt: skip
    return [f"{run} {flag['--stage']} from {flag.get('--model', 'the recipe model')} on node {index}",
            PROGRESS_MARK + Progress("train", 1, 2, "step 1/2 reward=0", {"reward": 0.0}).as_json(),
            PROGRESS_MARK + Progress("train", 2, 2, "step 2/2 reward=0.25", {"reward": 0.25}).as_json(),
            RESULT_MARK + result.as_json()]  # fmt: skip


def _pod_crash(job: dict, index: int) -> list[str]:
    return ["loading shards", "torch.OutOfMemoryError: CUDA out of memory"]


@pytest.fixture
def cluster_env(prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings that send training to a Kubernetes cluster, the fake API server's kubeconfig, a fresh home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("SWERL_CONFIG", raising=False)
    for key, value in {"SWERL_HOME": str(home), "SWERL_TRAIN__LAUNCHER": "kubernetes",
                       "SWERL_TRAIN__KUBERNETES__NAMESPACE": "ml", "SWERL_TRAIN__KUBERNETES__POLL_S": "0.01",
                       "SWERL_TRAIN__KUBERNETES__KUBECONFIG": str(tmp_path / "kubeconfig")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    yield home


def _flow_logs(flow_run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send the logs still queued in this process
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [entry.message for entry in logs]


def test_train_flow_on_kubernetes_ends_completed_with_the_pods_logs_in_the_run_log(
    cluster_env: Path, tmp_path: Path
) -> None:
    from fake_kubernetes import FakeKubernetes

    from flows.train import TrainOutcome, train

    with FakeKubernetes(logs=_pod_training) as api:
        api.kubeconfig(tmp_path)
        state = train(str(RECIPE_8B), "snap-1", sft_warm_start=True, return_state=True)
    assert state.is_completed(), state.message
    outcome = state.result()
    assert isinstance(outcome, TrainOutcome) and outcome.sft is not None
    grpo_run, sft_run = outcome.grpo.run_name, outcome.sft.run_name
    # Paths the pods reported under /data are the flow's SWERL_HOME; GRPO started from the SFT model.
    assert outcome.grpo.model_dir == cluster_env / "checkpoints" / grpo_run / "final"
    assert (outcome.grpo.steps, outcome.grpo.metrics) == (2, {"reward": 0.25})
    jobs = [obj for (kind, ns, _), obj in api.objects.items() if kind == "jobs" and ns == "ml"]
    assert [job["metadata"]["name"] for job in jobs] == [sft_run, grpo_run]
    assert sorted((cluster_env / "k8s").iterdir()) == sorted(cluster_env / "k8s" / run for run in (sft_run, grpo_run))
    logs = "\n".join(_flow_logs(state.state_details.flow_run_id))
    assert f"[{grpo_run}-0-x0z] {grpo_run} grpo from /data/checkpoints/{sft_run}/final on node 0" in logs
    for run in (sft_run, grpo_run):
        assert f"job ml/{run}: running (active 1" in logs and f"job ml/{run}: succeeded" in logs
    assert "SWERL-PROGRESS" not in logs and "SWERL-RESULT" not in logs
    # The recipe was read once, by the flow; the pods got it as their ConfigMap, the artifact records it.
    assert outcome.recipe.name == "llama3-8b" and "effective-configuration" in _artifact_keys()
    assert {"training-plan-sft", "training-plan-grpo"} <= _artifact_keys()  # checked before the first Job


def test_train_flow_refuses_a_recipe_that_cannot_fit_before_any_job_and_publishes_why(
    cluster_env: Path, tmp_path: Path
) -> None:
    from fake_kubernetes import FakeKubernetes

    from flows.train import train

    recipe = tmp_path / "too-big.yaml"
    text = (RECIPE_8B.parent / "llama3-70b.yaml").read_text().replace("zero3.json", "zero2.json")
    recipe.write_text(text.replace("name: llama3-70b", "name: too-big"))
    with FakeKubernetes() as api:
        api.kubeconfig(tmp_path)
        state = train(str(recipe), "snap-1", sft_warm_start=True, return_state=True)
        assert api.objects == {}, "a Job was submitted for a recipe that cannot fit"
    assert state.is_failed() and "recipe 'too-big' cannot run (sft)" in state.message, state.message
    assert "per training GPU against 80 GiB" in state.message
    assert "training-plan-sft" in _artifact_keys()


def test_train_flow_on_kubernetes_ends_failed_with_the_jobs_reason(cluster_env: Path, tmp_path: Path) -> None:
    from fake_kubernetes import FakeKubernetes

    from flows.train import train

    with FakeKubernetes(outcome="failed", logs=_pod_crash) as api:
        api.kubeconfig(tmp_path)
        state = train(str(RECIPE_8B), "snap-1", sft_warm_start=False, return_state=True)
    assert state.is_failed()
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in state.message
    assert "trainer exited with code 1 (Error)" in state.message
    assert "last line: torch.OutOfMemoryError: CUDA out of memory" in state.message
    logs = "\n".join(_flow_logs(state.state_details.flow_run_id))
    assert "loading shards" in logs and ": failed (active 0, succeeded 0, failed 1)" in logs


def test_train_flow_with_an_unreachable_cluster_fails_saying_so(cluster_env: Path, tmp_path: Path) -> None:
    from flows.train import train
    from swerl_core.train.distributed import free_port

    (tmp_path / "kubeconfig").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {}}],
            }
        )  # fmt: skip
    )
    state = train(str(RECIPE_8B), "snap-1", sft_warm_start=False, return_state=True)
    assert state.is_failed()
    assert "Kubernetes API at http://127.0.0.1:" in state.message and "is unreachable" in state.message


@pytest.fixture
def served_home(prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home holding the sample snapshot, for flows that train against a rollout server."""
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    home = tmp_path / "home"
    write_sample_snapshot(home)
    monkeypatch.delenv("SWERL_CONFIG", raising=False)
    monkeypatch.setenv("SWERL_HOME", str(home))
    return home


def _served_recipe(directory: Path, model: Path, url: str, **grpo: object) -> Path:
    """The flow test recipe with its GRPO rollouts from the server at ``url`` (directory weight sync), and room for
    the sample snapshot's oracle answers (SFT)."""
    import yaml

    recipe = write_recipe(directory, model, "served")
    values = yaml.safe_load(recipe.read_text())
    values["max_completion_length"] = 1024
    values["grpo"] |= {"use_vllm": True, "vllm_mode": "server", "vllm_server_url": url,
                       "vllm_weight_sync": "directory", "vllm_server_timeout_s": 1, **grpo}  # fmt: skip
    recipe.write_text(yaml.safe_dump(values))
    return recipe


@pytest.mark.slow
def test_a_train_flow_failed_by_a_dead_rollout_server_is_resumed_by_the_next_flow_run(
    served_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flow run 1: SFT, then GRPO until its rollout server dies at the sync before step 3; the trainer's one line
    naming the server and the step reaches the Failed flow run through the local launcher, which does not restart a
    trainer that failed so. Flow run 2, against a new server: the same SFT model, and the same GRPO run resumed
    from checkpoint-2 to its last step. It trains in this process: which run a stage continues is decided before
    any launcher starts (the local launcher's own resume is tested in ``test_train_followed.py``)."""
    from fake_rollout import serving
    from mlflow import MlflowClient

    from flows.train import TrainOutcome, train
    from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
    from swerl_core.runs import run_checkpoints
    from swerl_core.train.continuation import read_result_record

    model, checkpoints = tiny_model(tmp_path), served_home / "checkpoints"
    with serving() as first:
        first.die_at_version = 2  # the sync before step 3: checkpoints 1 and 2 are written
        recipe = _served_recipe(tmp_path, model, first.url, max_steps=3)
        failed = train(str(recipe), SAMPLE_SNAPSHOT_ID, return_state=True)
    assert failed.is_failed()
    assert f"rollout server {first.url} cannot be reached" in failed.message and "at step 3" in failed.message
    assert "(exit code 3)" in failed.message, failed.message  # the trainer's own refusal: not restarted
    [sft_run] = checkpoints.glob("served-sft-*")
    [grpo_run] = checkpoints.glob("served-grpo-*")
    assert [p.name for p in run_checkpoints(grpo_run)] == ["checkpoint-1", "checkpoint-2"]
    assert not (grpo_run / "rollout-weights").exists(), "a failed run left its last weights version behind"

    monkeypatch.setenv("SWERL_TRAIN__LAUNCHER", "in_process")  # a child process costs ~15 s per stage
    with serving() as second:
        recipe = _served_recipe(tmp_path, model, second.url, max_steps=3)  # a new server: a new URL, same run
        state = train(str(recipe), SAMPLE_SNAPSHOT_ID, return_state=True)
    assert state.is_completed(), state.message
    outcome = state.result()
    assert isinstance(outcome, TrainOutcome) and outcome.sft is not None
    assert (outcome.sft.run_name, outcome.sft.reused) == (sft_run.name, True), "the SFT warm start was trained again"
    grpo = outcome.grpo
    assert (grpo.run_name, grpo.steps, grpo.resumed_from_steps, grpo.reused) == (grpo_run.name, 3, (2,), False)
    assert grpo.base_model == str(sft_run / "final")
    assert second.loaded == [2], "the new server served more than the resumed step"
    assert [p.name for p in run_checkpoints(grpo_run)] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert read_result_record(grpo_run) == grpo and not (grpo_run / "rollout-weights").exists()
    status = MlflowClient(f"sqlite:///{served_home / 'mlflow.db'}").get_run(grpo.mlflow_run_id or "").info.status
    assert status == "FINISHED"


WATCHER = """
import sys
from flows.demo import follow
try:
    follow(sys.argv[1], poll_s=0.2, settle_s=0)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _flow_run(state: Any = None) -> Any:
    """A flow run of a flow no worker serves, created through the module's Prefect API (optionally set to ``state``)."""
    from prefect import flow
    from prefect.client.orchestration import get_client

    @flow(name="watched-retrain")
    def watched() -> None:
        """Never runs: no worker serves this test's API."""

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(watched)
        if state is not None:
            client.set_flow_run_state(run.id, state, force=True)
    return run


def test_ctrl_c_while_the_demo_watches_its_retrain_run_cancels_that_run(prefect_api: None, tmp_path: Path) -> None:
    import os
    import select
    import signal
    import subprocess
    import sys
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL

    run = _flow_run()
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": repo}
    err = tmp_path / "stderr"
    with err.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(run.id)], env=env, stdout=subprocess.PIPE, stderr=sink, text=True
        )
    assert process.stdout is not None
    first, deadline = "", time.monotonic() + 120
    while not first and process.poll() is None and time.monotonic() < deadline:  # the watch loop's first line
        if select.select([process.stdout], [], [], 1.0)[0]:
            first = process.stdout.readline()
    if "(waiting for the worker)" not in first:
        process.kill()
        raise AssertionError((first, err.read_text()[-2000:]))
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and f"cancelled flow run {run.id}" in out, (out, err.read_text()[-2000:])
    assert "Traceback" not in err.read_text()
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED), state
    assert "make demo was interrupted" in (state.message or ""), state.message


def test_cancelling_leaves_a_finished_run_as_it_ended_and_says_so_when_the_api_is_gone(prefect_api: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Completed

    from flows.demo import cancel

    done = _flow_run(Completed())
    assert cancel(done.id) == f"flow run {done.id} was not cancelled: it is Completed"
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(done.id).state.is_completed()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        line = cancel(done.id)
    assert line.startswith(f"could not cancel flow run {done.id}") and "prefect flow-run cancel" in line, line
