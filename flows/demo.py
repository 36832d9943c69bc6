"""``make demo``: the pipeline through the local stack — the ``retrain`` deployment run by the worker, then
the evaluation the train flow's Completed event triggers — on the offline learnable world, narrated.

Brings the stack up (Prefect server, worker, MLflow server; ``swerl_core.stack``), serves the demo world
as a GitHub-compatible API on 127.0.0.1, writes ``$SWERL_HOME/swerl.yaml`` (the flows' settings), stores
the world's token in the Prefect Secret block ``github-token``, builds the recipe's base model (the
learnable world's tiny model with its induction warm-up, cached), applies the deployments, runs
``retrain/retrain`` and waits for it and for the triggered ``evaluate-register`` run. A second run
finds no new pull requests, so the snapshot is unchanged and retrain says so and stops. The stack keeps
running afterwards (``make down`` stops it; ``DEMO_KEEP=0`` stops it at the end).
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
    Stack,
    artifact_rows,
    demo_settings,
    deploy,
    reward_line,
    serve_world,
    stack_from_env,
    start,
    stop,
    triggered_run,
)

DEMO_TOKEN = "demo-token"  # the local world server's own token; never a real GitHub credential
RECIPE = "learnable-cpu"  # a shipped recipe (deployments/configs/learnable-cpu.yaml)


def prepare(stack: Stack, recipe: str = RECIPE, settings: dict[str, Any] | None = None) -> None:
    """World server, settings file (``settings`` sections override the demo's), token block, base model, deployments."""
    from prefect.blocks.system import Secret

    from swerl_core.demo.induction import copying
    from swerl_core.demo.learnable import BASE_MODEL, learnable_base_model
    from swerl_core.stack import demo_world
    from swerl_core.train.config import load_train_config

    url = serve_world(stack, DEMO_TOKEN)
    repos = sorted(demo_world(stack.home).repos)
    chosen = demo_settings(url, repos)
    for section, values in (settings or {}).items():
        chosen[section] = {**chosen.get(section, {}), **values}
    (stack.home / "swerl.yaml").write_text(yaml.safe_dump(chosen), encoding="utf-8")
    Secret(value=DEMO_TOKEN).save("github-token", overwrite=True)
    if Path(load_train_config(recipe).base_model) == BASE_MODEL:  # checked, and reused when already built
        print(f"the base model, {stack.home / BASE_MODEL}: a tiny Llama taught to copy from its prompt (the "
              "induction warm-up, about 3 minutes on 2 cores the first time) …", flush=True)  # fmt: skip
        warmed = learnable_base_model(stack.home / BASE_MODEL, _sparse)
        print(f"base model ready in {warmed.seconds:.0f} s; copy accuracy {copying(warmed.copy_accuracy)}", flush=True)
    deploy(stack)
    print(f"learnable world {', '.join(repos)} served at {url}; deployments applied", flush=True)


def _sparse(event: Progress) -> None:
    """Print the warm-up's progress every 500 steps, and its other lines."""
    if event.total is None or event.step % 500 == 0 or event.step == event.total:
        print("  " + event.message, flush=True)


def report(stack: Stack, client: Any, retrain_run: Any, triggered: Any | None) -> None:
    """Print what happened and where to look."""
    from flows.bridge import flow_settings
    from swerl_core.registry.register import list_versions

    print(f"\nretrain: {retrain_run.state.name}: {retrain_run.state.message or ''}")
    latest = _latest_artifacts(client, retrain_run.start_time)
    for key in ("ingest-summary", "curation-funnel"):
        if key in latest:
            print(f"\n{key}:")
            for row in artifact_rows(latest[key].data):
                print("  " + ", ".join(f"{k}: {v}" for k, v in row.items()))
    if "mlflow-training-run" in latest:
        run_id = str(latest["mlflow-training-run"].data).rstrip(")").rsplit("/", 1)[-1]
        print("\n" + reward_line(run_id))
    print("\nheld-out mean reward, stage by stage (one protocol):")
    if "model-lineage" in latest:
        for row in artifact_rows(latest["model-lineage"].data):
            print(f"  {row.get('model')}: {row.get('mean reward')} (apply rate {row.get('apply rate')})")
    for key in sorted(k for k in latest if k.startswith("evaluation-")):
        rows = {r.get("metric"): r.get("value") for r in artifact_rows(latest[key].data)}
        print(f"  {key}: {rows.get('mean reward', '?')} (apply rate {rows.get('apply rate', '?')})")
    if "gate-decision" in latest:
        print("\n" + str(latest["gate-decision"].data))
    if triggered is not None:
        print(f"\ntriggered run {triggered.name!r}: {triggered.state.name}")
    print("\nregistered versions:")
    for row in list_versions(flow_settings()):
        print(f"  v{row.version}: aliases {', '.join(row.aliases) or '-'}; gate {row.verdict}")
    print(f"\nPrefect UI, this retrain run and its subflows: {stack.prefect_url}/runs/flow-run/{retrain_run.id}")
    print(f"Deployments and their next scheduled runs:    {stack.prefect_url}/deployments")
    print(f"MLflow UI, the registered model:              {stack.mlflow_url}/#/models/swerl-policy")


def _latest_artifacts(client: Any, since: Any) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for artifact in sorted(client.read_artifacts(), key=lambda a: a.created):
        if artifact.key and (since is None or artifact.created >= since):
            latest[artifact.key] = artifact
    return latest


def run_retrain(recipe: str = RECIPE, sft_warm_start: bool = True) -> tuple[Any, Any | None]:
    """Run ``retrain/retrain`` on the worker and wait for it, then for the evaluate-register run its train
    subflow's Completed event triggered (``None`` when retrain stopped before training)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    parameters = {"recipe": recipe, "sft_warm_start": sft_warm_start}
    run = run_deployment("retrain/retrain", parameters=parameters, timeout=None)
    with get_client(sync_client=True) as client:
        trains = [r for r in client.read_flow_runs() if r.parent_task_run_id and r.name.startswith("train ")]
        mine = [r for r in trains if r.start_time and run.start_time and r.start_time >= run.start_time]
        if not (run.state.is_completed() and mine):
            return run, None
        print("waiting for the evaluate-register run that the train run's Completed event started …", flush=True)
        return run, triggered_run(client, mine[-1].id)


def main() -> int:
    """Run the demo; returns the exit code."""
    from swerl_core.quiet import quiet_libraries

    quiet_libraries()  # the narration, not DeepSpeed's accelerator notice or weight-writing bars
    stack = stack_from_env()
    started = time.monotonic()
    print(f"starting the stack under {stack.home} …", flush=True)
    start(stack)
    os.environ.update(stack.client_env())
    from prefect.client.orchestration import get_client

    prepare(stack)
    print("running deployment retrain/retrain on the worker (ingest → curate → SFT → GRPO → evaluate → gate → "
          "register) …", flush=True)  # fmt: skip
    run, triggered = run_retrain()
    with get_client(sync_client=True) as client:
        report(stack, client, run, triggered)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    if os.environ.get("DEMO_KEEP", "1") == "0":
        print("stopped: " + ", ".join(stop(stack)))
    else:
        print("the stack keeps running for you to explore; stop it with `make down`")
    return 0 if run.state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
