"""The OpenAI-compatible endpoint backend against a small local server: answers, retries, refusals, timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eval_world import answers_by_issue, make_settings, write_snapshot
from fake_openai import FakeOpenAI

from swerl_core.config import Secret
from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.instances import heldout_instances
from swerl_core.evaluate.predictions import read_predictions
from swerl_core.registry.versions import mlflow_client
from swerl_core.store import Store


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # One home (snapshot + MLflow database, which takes seconds to create) for the module's tests.
    path = tmp_path_factory.mktemp("endpoint-home")
    write_snapshot(path, n_heldout=4)
    yield path


def _settings(home: Path, url: str, **extra: Any) -> Any:
    return make_settings(
        home,
        **{
            "evaluate.backend": "endpoint",
            "evaluate.endpoint_url": url,
            "evaluate.backoff_s": 0.0,
            "evaluate.concurrency": 2,
            **extra,
        },
    )


@pytest.mark.slow
def test_endpoint_evaluation_retries_503_and_records_everything(home: Path) -> None:
    instances = heldout_instances(home / "snapshots", "sample-eval-v1")
    answer = answers_by_issue(instances, wrong=frozenset({instances[0].instance_id}))
    with FakeOpenAI(answer, fail_first=2) as server, Store.open(home / "swerl.duckdb") as store:
        settings = _settings(home, server.url, **{"evaluate.samples": 2})
        report = evaluate(settings, "served-policy", "sample-eval-v1", store=store, api_key=Secret("sk-test"))
        query = "SELECT model_ref, n_instances, mean_reward, backend FROM evaluations"
        row = store.connection.execute(query).fetchall()
    assert len(server.requests) == 4 + 2, "two 503s should each have been retried once"
    assert {r["n"] for r in server.requests} == {2} and server.requests[-1]["auth"] == "Bearer sk-test"
    m = report.metrics
    assert (m.n_instances, m.n_samples, m.tokens_generated) == (4, 8, 88)
    assert m.exact_match_rate == pytest.approx(0.75) and m.format_error_rate == pytest.approx(0.25)
    assert m.mean_reward == pytest.approx((6 * 1.0 - 2 * 1.0) / 8) and m.best_of_k_reward == pytest.approx(0.5)
    assert row == [("served-policy", 4, pytest.approx(0.5), "endpoint")]
    lines = read_predictions(report.predictions_path)
    assert len(lines) == 8 and set(lines[0]) >= {"instance_id", "model_name_or_path", "model_patch", "reward"}
    good = next(x for x in lines if x["reward"] == 1.0)
    assert str(good["model_patch"]).startswith("diff --git a/src/toolkit/")
    run = mlflow_client(settings.tracking_uri).get_run(report.mlflow_run_id)
    assert run.data.metrics["heldout.mean_reward"] == pytest.approx(0.5)


def test_endpoint_refusal_fails_at_once_with_one_line(home: Path) -> None:
    server = FakeOpenAI(lambda m, k: "", status=400)
    with server, pytest.raises(EvaluateError, match="refused the request: HTTP 400"):
        evaluate(_settings(home, server.url, **{"evaluate.concurrency": 1}), "served-policy", "sample-eval-v1")
    assert len(server.requests) == 1, "a 400 must be neither retried nor followed by the other requests"


def test_endpoint_timeout_is_retried_then_reported(home: Path) -> None:
    extra = {"evaluate.timeout_s": 0.2, "evaluate.max_retries": 1, "evaluate.limit": 1}
    server = FakeOpenAI(lambda m, k: "", delay_s=1.0)
    with server, pytest.raises(EvaluateError, match="failed after 2 attempts"):
        evaluate(_settings(home, server.url, **extra), "served-policy", "sample-eval-v1")
    assert len(server.requests) == 2
