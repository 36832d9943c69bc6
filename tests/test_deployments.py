"""deployments/prefect.yaml and the swerl-gpu base job template, checked without a server: every entrypoint imports
a flow, parameters match the flow's signature, schedules parse, the trigger follows runs of the train deployment
only."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SPEC = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}


def _flow(entrypoint: str) -> Any:
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint)  # the way a worker loads it: by module, from the installed package


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_is_a_flow_and_parameters_match_its_signature(name: str) -> None:
    from prefect import Flow

    deployment = DEPLOYMENTS[name]
    assert ":" not in deployment["entrypoint"], "a file entrypoint needs the source tree on the worker"
    flow = _flow(deployment["entrypoint"])
    assert isinstance(flow, Flow), f"{deployment['entrypoint']} is not a Prefect flow"
    signature = inspect.signature(flow.fn)
    unknown = set(deployment.get("parameters") or {}) - set(signature.parameters)
    assert not unknown, f"{name}: parameters {sorted(unknown)} are not arguments of {flow.name}"
    for trigger in deployment.get("triggers") or []:
        assert set(trigger["parameters"]) <= set(signature.parameters)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_recipe_parameter_names_a_shipped_recipe(name: str) -> None:
    from swerl_core.train.config import load_train_config

    recipe = (DEPLOYMENTS[name].get("parameters") or {}).get("recipe")
    if recipe is not None:
        assert "/" not in recipe, f"{name}: recipe {recipe!r} is a path; a worker outside the repository lacks it"
        assert load_train_config(recipe).name == recipe


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_schedules_parse_and_use_a_known_pool(name: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    deployment = DEPLOYMENTS[name]
    assert deployment["work_pool"]["name"] in ("swerl-cpu", "swerl-gpu")
    for schedule in deployment.get("schedules") or []:
        if "cron" in schedule:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        else:
            IntervalSchedule(interval=schedule["interval"], timezone=schedule["timezone"])


def test_ingest_is_scheduled_and_retrain_runs_nightly_one_at_a_time() -> None:
    assert DEPLOYMENTS["ingest"]["schedules"], "ingest has no schedule"
    nightly = DEPLOYMENTS["retrain"]["schedules"][0]["cron"].split()
    assert nightly[2:] == ["*", "*", "*"], "retrain is not daily"
    assert DEPLOYMENTS["retrain"]["concurrency_limit"] == 1 and DEPLOYMENTS["train"]["concurrency_limit"] == 1


def _completed(flow: str, *related: tuple[str, str]) -> Any:
    """A flow run's Completed event as the Prefect 3.9.1 server emits it: the flow, plus ``(role, name)`` pairs.

    Measured on a real server: a deployment run relates its flow and its deployment (role ``deployment``); a subflow
    relates its flow and its parent task run (role ``task-run``), never a deployment.
    """
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent

    resources = [{"prefect.resource.id": f"prefect.flow.{uuid4()}", "prefect.resource.role": "flow",
                  "prefect.resource.name": flow}]  # fmt: skip
    for role, name in related:
        resources.append({"prefect.resource.id": f"prefect.{role}.{uuid4()}", "prefect.resource.role": role,
                          "prefect.resource.name": name})  # fmt: skip
    return ReceivedEvent(
        occurred="2026-12-01T00:00:00Z",
        event="prefect.flow-run.Completed",
        resource={"prefect.resource.id": f"prefect.flow-run.{uuid4()}", "prefect.resource.name": "a-run"},
        related=resources,
        id=uuid4(),
    )


def test_evaluate_register_is_triggered_by_runs_of_the_train_deployment_only() -> None:
    from prefect.server.events.schemas.automations import EventTrigger

    train_flow = _flow(DEPLOYMENTS["train"]["entrypoint"])
    (spec,) = DEPLOYMENTS["evaluate-register"]["triggers"]
    assert spec["parameters"] == {"upstream": "{{ event.resource.id }}"}
    fields = {k: v for k, v in spec.items() if k in ("match", "match_related", "expect")}
    trigger = EventTrigger(**fields, posture="Reactive")
    assert trigger.covers(_completed(train_flow.name, ("deployment", DEPLOYMENTS["train"]["name"])))
    assert not trigger.covers(_completed(train_flow.name, ("task-run", "train-0"))), "a retrain's train subflow"
    assert not trigger.covers(_completed("retrain", ("deployment", "retrain")))
    assert not trigger.covers(_completed("evaluate-register", ("deployment", "evaluate-register")))
