"""``make demo``: the pipeline through the local stack — the ``retrain`` deployment run by the worker, which
trains, evaluates, gates and registers — on the offline learnable world, narrated.

Brings the stack up (Prefect server, worker, MLflow server; ``swerl_core.stack``), serves the demo world as a
GitHub-compatible API on 127.0.0.1, writes ``$SWERL_HOME/swerl.yaml`` (the flows' settings), stores the world's
token in the Prefect Secret block ``github-token``, builds the recipe's base model (the learnable world's tiny model
with its induction warm-up, cached), applies the deployments, runs ``retrain/retrain``, waits for it and reports
what its own subflows published (evaluations, gate decision, registration). A second run finds no new pull requests,
so the snapshot is unchanged and retrain says so and stops. The stack keeps running afterwards (``make down`` stops
it; ``DEMO_KEEP=0`` stops it at the end).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from swerl_core.progress import Progress
from swerl_core.stack import (
    DEMO_PRS_PER_REPO,
    Stack,
    artifact_rows,
    demo_settings,
    deploy,
    reward_line,
    serve_world,
    stack_from_env,
    start,
    stop,
)

DEMO_TOKEN = "demo-token"  # the local world server's own token; never a real GitHub credential
RECIPE = "learnable-cpu"  # a shipped recipe (deployments/configs/learnable-cpu.yaml)


def prepare(
    stack: Stack, recipe: str = RECIPE, settings: dict[str, Any] | None = None, prs_per_repo: int = DEMO_PRS_PER_REPO
) -> None:
    """World server (``prs_per_repo`` fixes a repository), settings file (``settings`` sections override the demo's),
    token block, base model, deployments."""
    from prefect.blocks.system import Secret

    from swerl_core.demo.induction import copying
    from swerl_core.demo.learnable import BASE_MODEL, learnable_base_model
    from swerl_core.train.config import load_train_config

    url = serve_world(stack, DEMO_TOKEN, prs_per_repo=prs_per_repo)
    chosen = demo_settings(url, settings)
    (stack.home / "swerl.yaml").write_text(yaml.safe_dump(chosen), encoding="utf-8")
    Secret(value=DEMO_TOKEN).save("github-token", overwrite=True)
    if Path(load_train_config(recipe).base_model) == BASE_MODEL:  # checked, and reused when already built
        print(f"the base model, {stack.home / BASE_MODEL}: a tiny Llama taught to copy from its prompt (the "
              "induction warm-up, a few minutes on 2 cores the first time) …", flush=True)  # fmt: skip
        warmed = learnable_base_model(stack.home / BASE_MODEL, _sparse)
        print(f"base model ready in {warmed.seconds:.0f} s; copy accuracy {copying(warmed.copy_accuracy)}", flush=True)
    deploy(stack)
    print(f"learnable world {', '.join(chosen['ingest']['repos'])} served at {url}; deployments applied", flush=True)


def _sparse(event: Progress) -> None:
    """Print the warm-up's progress every 200 steps, and its other lines."""
    if event.total is None or event.step % 200 == 0 or event.step == event.total:
        print("  " + event.message, flush=True)


def report(stack: Stack, client: Any, retrain_run: Any) -> None:
    """Print what the retrain run and its subflows did (their artifacts) and where to look."""
    from flows.bridge import flow_settings
    from swerl_core.demo.summary import demo_summary, ui_links, version_lines
    from swerl_core.registry.register import list_versions

    latest = run_artifacts(client, retrain_run.id)
    tables = {key: artifact_rows(a.data) for key, a in latest.items() if a.type == "table"}
    texts = {key: str(a.data) for key, a in latest.items() if a.type == "markdown"}
    curve = None
    if "mlflow-training-run" in latest:
        curve = reward_line(str(latest["mlflow-training-run"].data).rstrip(")").rsplit("/", 1)[-1])
    settings = flow_settings()
    versions = version_lines(list_versions(settings))
    links = ui_links(stack.prefect_url, stack.mlflow_url, retrain_run.id, settings.registry.model_name)
    state = f"{retrain_run.state.name}: {retrain_run.state.message or ''}"
    print("\n" + demo_summary(state, tables, texts, curve, versions, links))


def run_artifacts(client: Any, root_id: Any) -> dict[str, Any]:
    """The newest artifact of each key published by flow run ``root_id`` or any of its subflows, at any depth."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    tree = [root_id, *(child.id for child in subflow_runs(client, root_id))]
    found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=tree)))
    return {a.key: a for a in sorted(found, key=lambda a: a.created) if a.key}


def run_retrain(recipe: str = RECIPE, sft_warm_start: bool = True, watch_url: str | None = None) -> Any:
    """Run ``retrain/retrain`` on the worker and wait for it; it evaluates, gates and registers what it trained.

    With ``watch_url`` (the Prefect UI) it prints where to watch the run, then each subflow as it starts
    (:func:`follow`). Ctrl-C from the moment the run is asked for cancels it and is raised again: an interrupted demo
    leaves no training running behind it.
    """
    import uuid

    from prefect.deployments import run_deployment

    parameters = {"recipe": recipe, "sft_warm_start": sft_warm_start}
    if watch_url is None:
        return run_deployment("retrain/retrain", parameters=parameters, timeout=None)
    key = f"make-demo-{uuid.uuid4()}"  # names the run even when Ctrl-C lands before its id came back
    try:
        run = run_deployment("retrain/retrain", parameters=parameters, timeout=0, idempotency_key=key)
    except KeyboardInterrupt:
        print("\n  " + _cancel_asked(key, parameters), flush=True)
        raise
    print(f"  watch it: {watch_url}/runs/flow-run/{run.id}", flush=True)
    return follow(run.id)


def _cancel_asked(key: str, parameters: dict[str, Any]) -> str:
    """Cancel the retrain run asked for under idempotency ``key`` (asking again returns the same run)."""
    from prefect.deployments import run_deployment

    try:
        run = run_deployment("retrain/retrain", parameters=parameters, timeout=0, idempotency_key=key)
    except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - whatever stops the lookup, the user is told once
        return f"could not look up the retrain run ({type(exc).__name__}): see {os.environ.get('PREFECT_API_URL')}"
    return cancel(run.id)


def follow(run_id: Any, poll_s: float = 5.0, settle_s: float = 30.0) -> Any:
    """:func:`watch` flow run ``run_id`` until it ends; returns the finished run.

    Ctrl-C cancels the run (its worker stops it, subflows included), waits up to ``settle_s`` for the worker to have
    stopped it, prints one line saying what happened, and is raised again.
    """
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            return watch(client, run_id, poll_s)
    except KeyboardInterrupt:
        print("\n  " + cancel(run_id, settle_s), flush=True)
        raise


def cancel(run_id: Any, settle_s: float = 0.0) -> str:
    """Ask the Prefect API to cancel flow run ``run_id`` and wait up to ``settle_s`` for it to be cancelled; returns
    the line that says what happened. Never raises: an API that does not answer, or a second Ctrl-C, is said too."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelling

    by_hand = f"cancel it with `prefect flow-run cancel {run_id}`"
    try:
        with get_client(sync_client=True) as client:
            # Not forced: a run that already ended stays as it ended (Prefect refuses a final state → Cancelling).
            result = client.set_flow_run_state(run_id, Cancelling(message="make demo was interrupted (Ctrl-C)"))
            if result.status != SetStateStatus.ACCEPT:
                now = client.read_flow_run(run_id).state
                return f"flow run {run_id} was not cancelled: it is {now.name if now else 'unknown'}"
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    return f"cancelled flow run {run_id}: {state.name}"
                time.sleep(1.0)
    except KeyboardInterrupt:
        return f"stopped waiting for flow run {run_id} to be cancelled; if it still runs, {by_hand}"
    except httpx.HTTPError as exc:
        return f"could not cancel flow run {run_id} ({type(exc).__name__}): {by_hand}"
    return f"cancelled flow run {run_id}: its worker stops it"


def watch(client: Any, run_id: Any, poll_s: float = 5.0) -> Any:
    """Print flow run ``run_id``'s state, then its subflows as they start, until it ends; returns the finished run."""
    import httpx

    from swerl_core.demo.summary import Narration

    narration, failures = Narration(), 0
    while True:
        time.sleep(poll_s)
        try:
            run = client.read_flow_run(run_id)
            children = subflow_runs(client, run_id)
        except httpx.HTTPError as exc:  # the server slow or restarting under load: the run goes on, keep watching
            failures += 1
            if failures == 12:
                raise
            print(f"  (the Prefect API did not answer: {type(exc).__name__}; retrying)", flush=True)
            continue
        failures = 0
        subflows = [(child.id, child.name) for child in sorted(children, key=lambda r: r.created)]
        for line in narration.update(run.state.name if run.state is not None else "?", subflows):
            print(line, flush=True)
        if run.state is not None and run.state.is_final():
            return run


def subflow_runs(client: Any, root_id: Any) -> list[Any]:
    """Every flow run below flow run ``root_id``, at any depth."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found: list[Any] = []
    frontier = [root_id]
    while frontier:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)))  # fmt: skip
        found += children
        frontier = [child.id for child in children]
    return found


def main() -> int:
    """Run the demo; returns the exit code (130 after Ctrl-C)."""
    stack = None
    try:
        from swerl_core.quiet import quiet_libraries

        quiet_libraries()  # the narration, not DeepSpeed's accelerator notice or weight-writing bars
        stack = stack_from_env()
        started = time.monotonic()
        print(f"starting the stack under {stack.home} …", flush=True)
        start(stack)
        os.environ.update(stack.client_env())
        # Prefect reads its settings when first imported: only now, pointed at the stack's server.
        from prefect.client.orchestration import get_client

        prepare(stack)
        print("running deployment retrain/retrain on the worker (ingest → curate → SFT → GRPO → evaluate → gate → "
              "register) …", flush=True)  # fmt: skip
        run = run_retrain(watch_url=stack.prefect_url)
    except KeyboardInterrupt:
        if stack is not None and os.environ.get("DEMO_KEEP", "1") == "0":
            print("demo interrupted; stopped: " + (", ".join(stop(stack)) or "nothing was running"), flush=True)
        else:
            print("demo interrupted; the stack keeps running (`make down` stops it)", flush=True)
        return 130
    with get_client(sync_client=True) as client:
        report(stack, client, run)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    if os.environ.get("DEMO_KEEP", "1") == "0":
        print("stopped: " + ", ".join(stop(stack)))
    else:
        print("the stack keeps running for you to explore; stop it with `make down`")
    return 0 if run.state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
