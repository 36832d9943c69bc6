"""The deployed pipeline on a real local stack: Prefect server and worker, MLflow server, `prefect deploy`,
the retrain deployment run by the worker (which evaluates and registers its own training: no evaluate-register
run follows it), a run of the train deployment (exactly one evaluate-register run follows it), artifacts read
back through the API, the registered version in MLflow — and both UIs in a real headless Chromium. One stack per
module (started once); the last test stops it like `make down`."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flow_world import tiny_model, write_recipe

from swerl_core.stack import Stack, start, status, stop

pytestmark = pytest.mark.heavy(160)  # seconds in make test: started first (tests/conftest.py)

CHROMIUM = Path("/usr/bin/chromium")
# The learnable world at 60 fixes a repository (9 held out): what the stack is asked to do is deploy and run the
# pipeline, not learn; the demo's 2,400 pull requests took retrain's ingest 66 s of this module's ~5 minutes.
STACK_PRS_PER_REPO = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Deployed:
    """The stack and what the module's deployment runs left behind: retrain, then a run of the train deployment."""

    def __init__(self, stack: Stack, run: Any, after_retrain: list[Any], train_run: Any, triggered: list[Any]) -> None:
        self.stack, self.run, self.after_retrain = stack, run, after_retrain
        self.train_run, self.triggered = train_run, triggered


def _evaluate_registers(client: Any) -> list[Any]:
    return [r for r in client.read_flow_runs() if r.name.startswith("evaluate-register after")]


def _train_subflow_snapshot(client: Any, retrain_id: Any) -> str:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[retrain_id]))
    )
    (train,) = [r for r in children if r.name.startswith("train ")]
    return str(train.parameters["snapshot_id"])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.demo import prepare, run_retrain
    from swerl_core.stack import triggered_run

    home = tmp_path_factory.mktemp("stack-home")
    stack = Stack(home, _free_port(), _free_port())
    saved = dict(os.environ)
    try:
        start(stack, env={**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1"})
        os.environ.update(stack.client_env())
        # Prefect read its settings when it was first imported (maybe by an earlier test module): point this
        # process's client at the stack explicitly, not only through the environment.
        with temporary_settings(updates={PREFECT_API_URL: stack.prefect_api}):
            recipe = write_recipe(home, tiny_model(home))
            gate = {"reward_floor": -1.0, "format_error_ceiling": 1.0, "without_champion": "floor"}
            # No tests run here (tests/test_evaluate_resolved.py runs them on the same world): 40 validations would
            # double this module's curate.
            small = {"evaluate": {"max_new_tokens": 32, "limit": 3}, "registry": gate}
            small["execution"] = {"environments": []}
            prepare(stack, str(recipe), small, prs_per_repo=STACK_PRS_PER_REPO)
            run = run_retrain(str(recipe), sft_warm_start=False)  # SFT runs in make demo
            with get_client(sync_client=True) as client:
                # The train subflow completed long before retrain's evaluations and registration ended: a trigger
                # it fired (0.05-2 s after the event) would have started its run by now.
                after_retrain = _evaluate_registers(client)
                # A new run of the recipe retrain just trained (resume: false), not the finished one reused.
                parameters = {"recipe": str(recipe), "snapshot_id": _train_subflow_snapshot(client, run.id),
                              "sft_warm_start": False, "resume": False}  # fmt: skip
                train_run = run_deployment("train/train", parameters=parameters, timeout=None)
                triggered_run(client, train_run.id)
                yield Deployed(stack, run, after_retrain, train_run, _evaluate_registers(client))
    finally:
        stop(stack)
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.slow
def test_retrain_deployment_completes_and_starts_no_evaluate_register_run(deployed: Deployed) -> None:
    assert deployed.run.state.is_completed(), deployed.run.state.message
    assert "gate pass" in deployed.run.state.message, deployed.run.state.message
    assert deployed.after_retrain == [], "retrain's train subflow triggered evaluate-register"


@pytest.mark.slow
def test_a_train_deployment_run_starts_exactly_one_evaluate_register_run(deployed: Deployed) -> None:
    assert deployed.train_run.state.is_completed(), deployed.train_run.state.message
    (triggered,) = deployed.triggered
    assert triggered.parameters["upstream"] == f"prefect.flow-run.{deployed.train_run.id}"
    assert triggered.state.is_completed(), triggered.state.message


@pytest.mark.slow
def test_artifacts_of_every_stage_are_readable_through_the_api(deployed: Deployed) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        keys = {a.key: a.type for a in client.read_artifacts() if a.key}
    assert keys.get("ingest-summary") == "table" and keys.get("curation-funnel") == "table"
    assert keys.get("gate-decision") == "markdown" and keys.get("training-progress-grpo") == "progress"
    assert keys.get("mlflow-training-run") == "markdown" and keys.get("reward-curve") == "image"
    assert keys.get("effective-configuration") == "markdown" and keys.get("model-lineage") == "table"
    with get_client(sync_client=True) as client:
        assert client.read_concurrency_limit_by_tag("github-api").concurrency_limit == 4


@pytest.mark.slow
def test_registered_version_is_champion_in_mlflow(deployed: Deployed) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(deployed.stack.mlflow_url)
    champion = client.get_model_version_by_alias("swerl-policy", "champion")
    assert str(champion.version) == "1" and champion.tags["gate.verdict"] == "pass"
    assert client.get_registered_model("swerl-policy").description and "gate pass" in champion.description
    training = client.get_run(champion.run_id)
    assert {i.tags[0].value for i in training.inputs.dataset_inputs} >= {"training", "evaluation"}
    # The effective settings the run trained with, besides its recipe, are the training run's params.
    assert training.data.params["settings.registry.policy"] == "auto" and "grpo.max_steps" in training.data.params
    assert champion.tags["gate.baseline"] == "floor" and champion.tags["gate.against"].startswith("the floor")
    # The train deployment's run was registered once, by its triggered evaluate-register, and judged against v1.
    second = client.get_model_version("swerl-policy", "2")
    assert second.tags["gate.against"] == "champion v1" and second.run_id != champion.run_id


def _page(url: str, wait_for: str, shot: Path, tab: str | None = None) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        if tab is not None:
            page.get_by_text(tab, exact=True).first.click(timeout=60_000)
        page.get_by_text(wait_for).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shot), full_page=True)
        text = page.inner_text("body")
        browser.close()
    return text


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.mark.slow
@needs_chromium
def test_prefect_ui_shows_the_completed_retrain_run_and_its_artifacts(deployed: Deployed, tmp_path: Path) -> None:
    url = f"{deployed.stack.prefect_url}/runs/flow-run/{deployed.run.id}"
    text = _page(url, "retrain-summary", tmp_path / "flow-run.png", tab="Artifacts")
    assert deployed.run.name in text and "Completed" in text


@pytest.mark.slow
@needs_chromium
def test_prefect_ui_deployments_page_shows_the_schedules(deployed: Deployed, tmp_path: Path) -> None:
    text = _page(f"{deployed.stack.prefect_url}/deployments", "retrain", tmp_path / "deployments.png")
    assert "evaluate-register" in text and "ingest" in text
    assert "At 02:00 AM" in text or "0 2 * * *" in text, "the nightly retrain schedule is not shown"


@pytest.mark.slow
@needs_chromium
def test_mlflow_ui_shows_the_version_with_its_champion_alias(deployed: Deployed, tmp_path: Path) -> None:
    text = _page(f"{deployed.stack.mlflow_url}/#/models/swerl-policy", "Version 1", tmp_path / "mlflow.png")
    assert "champion" in text


def _trainers(run_name: str) -> list[int]:
    """Processes training ``run_name`` (the followed trainer the train task starts)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "swerl_core.train.followed" in command and run_name in command:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_cancelling_a_training_run_in_prefect_stops_its_trainer_and_marks_the_mlflow_run_killed(
    deployed: Deployed, tmp_path: Path
) -> None:
    import time

    import yaml
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    recipe = yaml.safe_load(write_recipe(tmp_path, tiny_model(tmp_path), name="endless").read_text())
    recipe["grpo"] |= {"max_steps": 100_000, "save_steps": 100_000}  # trains until it is stopped
    path = tmp_path / "endless.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    parameters = {"recipe": str(path), "snapshot_id": deployed.train_run.parameters["snapshot_id"],
                  "sft_warm_start": False}  # fmt: skip
    mlflow = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])

    def training() -> Any:
        runs = mlflow.search_runs(
            [e.experiment_id for e in mlflow.search_experiments()], "attributes.run_name LIKE 'endless-grpo-%'"
        )
        return runs[0] if runs else None

    with get_client(sync_client=True) as client:
        flow_run = run_deployment("train/train", parameters=parameters, timeout=0)
        deadline = time.monotonic() + 300
        while (run := training()) is None or not mlflow.get_metric_history(run.info.run_id, "reward"):
            assert time.monotonic() < deadline, "the training never logged a step"
            time.sleep(1)
        run_name = run.info.run_name
        assert _trainers(run_name), "no trainer process found"
        client.set_flow_run_state(flow_run.id, Cancelling())
        states = []  # the worker stops the process, then marks the run Cancelled
        while not (state := client.read_flow_run(flow_run.id).state).is_cancelled():
            states.append(state.name)
            assert time.monotonic() < deadline + 120, f"not Cancelled after the cancellation: {states[-5:]}"
            time.sleep(1)
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED", "the MLflow run was left " + str(
        mlflow.get_run(run.info.run_id).info.status
    )
    assert _trainers(run_name) == [], "a trainer outlived its cancelled flow run"


@pytest.mark.slow
def test_down_stops_exactly_the_processes_up_started(deployed: Deployed) -> None:
    running = {name: pid for name, pid in status(deployed.stack).items() if pid}
    assert set(running) == {"prefect-server", "mlflow", "worker", "github"}
    assert set(stop(deployed.stack)) == set(running)
    assert not any(status(deployed.stack).values())


def test_the_local_stack_runs_without_logins_even_when_the_shell_holds_production_ones(tmp_path: Path) -> None:
    from swerl_core.stack import NO_LOGIN_NOTICE, PRODUCTION_LOGINS, _service_env

    shell = {name: "a-production-secret" for name in PRODUCTION_LOGINS} | {"PATH": os.environ["PATH"]}
    stack = Stack(tmp_path, 4200, 5000)
    for service in ("prefect-server", "mlflow", "worker"):
        env = _service_env(stack, service, shell)
        assert "a-production-secret" not in env.values() and env["PATH"] == os.environ["PATH"], service
    assert "127.0.0.1 only" in NO_LOGIN_NOTICE and "no authentication" in NO_LOGIN_NOTICE
