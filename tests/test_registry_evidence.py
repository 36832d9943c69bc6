"""Evaluation to registry under one protocol: an evaluation is reused only under the protocol it was run with
(snapshot, K, instances after --limit, decoding settings), the champion is evaluated again under the candidate's,
without a champion the candidate is paired with the model its training started from (``trained_from``), a training
run already registered gets its version back, and the evaluation's MLflow run is chosen without swallowing errors."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from eval_world import SNAPSHOT, ScriptedBackend, answers_by_issue, make_settings, write_snapshot
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

import swerl_core.registry.evidence as evidence
from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.instances import heldout_instances
from swerl_core.evaluate.protocol import heldout_protocol
from swerl_core.evaluate.results import latest_evaluation
from swerl_core.models import experiment_id
from swerl_core.registry.evidence import evaluate_and_register
from swerl_core.registry.versions import mlflow_client
from swerl_core.runs import write_run_id
from swerl_core.store import Store


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One MLflow database and snapshot for the module (creating one takes seconds); each test its own model name.
    home = tmp_path_factory.mktemp("eval-registration-home")
    write_snapshot(home, n_heldout=4)
    return home


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store.open(tmp_path / "swerl.duckdb") as opened:
        yield opened


def _checkpoint(home: Path, name: str) -> Path:
    path = home / "checkpoints" / name / "final"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return path


def _trained_checkpoint(home: Path, settings: Any, name: str, base: Path | None) -> Path:
    """A GRPO run's final checkpoint whose MLflow training run records ``base`` as its base model (or none)."""
    client = mlflow_client(settings.tracking_uri)
    run = client.create_run(experiment_id(client, "swerl-train", home / "mlartifacts"), run_name=name).info.run_id
    client.log_param(run, "stage", "grpo")
    if base is not None:
        client.log_param(run, "base_model", str(base))
    checkpoint = _checkpoint(home, name)
    write_run_id(checkpoint.parent, run)
    return checkpoint


def _scripted(home: Path, wrong: int) -> ScriptedBackend:
    """Oracle answers for the held-out instances, a malformed one for the last ``wrong`` of them."""
    instances = heldout_instances(home / "snapshots", SNAPSHOT)
    return ScriptedBackend(
        answers_by_issue(instances, frozenset(i.instance_id for i in instances[len(instances) - wrong :]))
    )


def test_a_limit_1_evaluation_is_not_reused_by_register_for_the_full_protocol(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = make_settings(home, **{"evaluate.limit": 1, "registry.model_name": "p-limit"})
    full = make_settings(home, **{"registry.model_name": "p-limit"})
    ckpt = _checkpoint(home, "limited-then-full")
    one = evaluate(limited, str(ckpt), SNAPSHOT, store=store, backend=_scripted(home, wrong=3))
    assert one.metrics.n_instances == 1 and one.metrics.mean_reward == 1.0
    assert latest_evaluation(store, heldout_protocol(full, SNAPSHOT), model_ref=str(ckpt)) is None
    backend = _scripted(home, wrong=3)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    result = evaluate_and_register(full, store, ckpt, SNAPSHOT, who="alice")
    assert backend.calls == 1, "the 1-instance evaluation stood in for the full protocol"
    assert result.verdict.candidate.protocol == heldout_protocol(full, SNAPSHOT).fingerprint != one.protocol.fingerprint
    tags = mlflow_client(full.tracking_uri).get_model_version("p-limit", result.version).tags
    assert tags["eval.n_instances"] == "4.0" and float(tags["eval.mean_reward"]) < 0
    assert tags["eval.protocol"] == result.verdict.candidate.protocol


def test_a_second_registration_under_the_same_protocol_reuses_the_evaluation(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"registry.model_name": "p-reuse"})
    ckpt = _checkpoint(home, "evaluated-once")
    report = evaluate(settings, str(ckpt), SNAPSHOT, store=store, backend=_scripted(home, wrong=1))
    backend = _scripted(home, wrong=0)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    result = evaluate_and_register(settings, store, ckpt, SNAPSHOT, who="alice")
    assert backend.calls == 0 and result.verdict.candidate.mean_reward == report.metrics.mean_reward


def test_a_champion_evaluated_with_limit_1_is_evaluated_again_under_the_candidates_protocol(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = make_settings(home, **{"evaluate.limit": 1, "registry.model_name": "p-champ", "registry.policy": "auto"})
    full = make_settings(home, **{"registry.model_name": "p-champ"})
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=_scripted(home, wrong=3)))
    champion = evaluate_and_register(limited, store, _checkpoint(home, "champ-limited"), SNAPSHOT, who="alice")
    assert champion.verdict.passed and champion.moves[-1].alias == "champion"
    backend = _scripted(home, wrong=3)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    result = evaluate_and_register(full, store, _checkpoint(home, "challenger-full"), SNAPSHOT, who="bob")
    protocol = heldout_protocol(full, SNAPSHOT)
    assert backend.calls == 2, "candidate and champion must both be evaluated under the full protocol"
    assert result.verdict.champion is not None and result.verdict.champion.protocol == protocol.fingerprint
    assert result.verdict.champion.mean_reward == result.verdict.candidate.mean_reward < 1.0
    assert latest_evaluation(store, protocol, version=("p-champ", champion.version)) is not None


def _first_sample_right(home: Path) -> ScriptedBackend:
    """Oracle answers for sample 0 (what greedy decoding returns), a malformed one for every other sample."""
    oracle = answers_by_issue(heldout_instances(home / "snapshots", SNAPSHOT))
    return ScriptedBackend(lambda messages, sample: oracle(messages, sample) if sample == 0 else "no idea")


@pytest.mark.parametrize("gate_on", ["greedy", "sampled"])
def test_with_k_above_1_greedy_and_sampled_are_both_judged_and_the_configured_one_decides(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch, gate_on: str
) -> None:
    name = f"p-modes-{gate_on}"
    overrides = {"evaluate.samples": 2, "registry.gate_on": gate_on, "registry.model_name": name}
    settings = make_settings(home, **overrides, **{"registry.reward_floor": 0.5, "registry.policy": "auto"})
    backend = _first_sample_right(home)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    first = evaluate_and_register(settings, store, _checkpoint(home, f"modes-{gate_on}-1"), SNAPSHOT, who="alice")
    assert backend.calls == 2, "one greedy and one sampled evaluation"
    other = "sampled" if gate_on == "greedy" else "greedy"
    assert set(first.reports) == {"greedy", "sampled"} and first.reports[gate_on] is first.verdict
    greedy, sampled = first.reports["greedy"], first.reports["sampled"]
    assert greedy.decision == "pass" and greedy.candidate.samples == 1 and greedy.candidate.mean_reward == 1.0
    assert sampled.decision == "fail" and sampled.candidate.samples == 2 and sampled.candidate.mean_reward == 0.0
    assert first.verdict.passed == (gate_on == "greedy")
    tags = mlflow_client(settings.tracking_uri).get_model_version(name, first.version).tags
    assert (
        tags["gate.verdict"] == first.verdict.decision
        and tags[f"gate.{other}.verdict"] == first.reports[other].decision
    )
    assert tags[f"eval.{other}.samples"] == ("2" if other == "sampled" else "1")
    if gate_on == "greedy":  # now champion: the next candidate is paired with its stored rewards in both modes
        second = evaluate_and_register(settings, store, _checkpoint(home, "modes-greedy-2"), SNAPSHOT, who="bob")
        assert backend.calls == 4, "the champion's stored per-instance rewards must be reused, not re-evaluated"
        for mode in ("greedy", "sampled"):
            verdict = second.reports[mode]
            assert verdict.champion_version == first.version and verdict.comparison.mean_difference == 0.0
            assert verdict.decision == "fail" and verdict.comparison.n_instances == 4


def test_without_a_champion_trained_from_pairs_the_candidate_with_its_base_under_the_same_protocol(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four held-out instances: the exact sign-flip test can reach p = 1/16, so alpha 0.1 lets a clear gain pass.
    overrides = {"registry.model_name": "p-base", "registry.without_champion": "trained_from", "registry.alpha": 0.1}
    settings = make_settings(home, **overrides, **{"registry.reward_floor": 1.0})
    base = _checkpoint(home, "sft-base")
    evaluate(settings, str(base), SNAPSHOT, store=store, backend=_scripted(home, wrong=4))  # every answer malformed
    candidate = _trained_checkpoint(home, settings, "grpo-from-sft", base)
    backend = _scripted(home, wrong=0)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    result = evaluate_and_register(settings, store, candidate, SNAPSHOT, who="alice")
    assert backend.calls == 1, "the base's evaluation under the same protocol must be reused, the candidate's run"
    verdict = result.verdict
    assert verdict.decision == "pass", verdict.reason  # the floor of 1.0 would have failed it
    assert verdict.against == f"its base {base.resolve()}" and verdict.comparison.mean_difference == 2.0
    tags = mlflow_client(settings.tracking_uri).get_model_version("p-base", result.version).tags
    assert (tags["gate.baseline"], tags["gate.baseline_model"]) == ("trained_from", str(base.resolve()))
    assert tags["gate.against"] == verdict.against and float(tags["gate.baseline_mean_reward"]) == -1.0


def test_trained_from_with_no_recorded_base_is_inconclusive_and_a_registered_run_gets_its_version_back(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"registry.model_name": "p-nobase", "registry.without_champion": "trained_from"})
    candidate = _trained_checkpoint(home, settings, "grpo-from-hub", None)
    backend = _scripted(home, wrong=0)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=backend))
    first = evaluate_and_register(settings, store, candidate, SNAPSHOT, who="alice")
    assert first.created and first.verdict.decision == "inconclusive" and first.moves == ()
    assert "no known base to compare with" in first.verdict.reason
    # Another checkpoint of the same training run: the run is registered once, nothing is evaluated again.
    other = candidate.parent / "checkpoint-1"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    again = evaluate_and_register(settings, store, other, SNAPSHOT, who="bob")
    assert (again.version, again.created, backend.calls) == (first.version, False, 1)
    assert (again.verdict.decision, again.verdict.reason) == ("inconclusive", first.verdict.reason)
    assert again.verdict.against == "its base (unknown)"
    versions = mlflow_client(settings.tracking_uri).search_model_versions("name = 'p-nobase'")
    assert [str(v.version) for v in versions] == [first.version]


def test_decoding_settings_that_change_the_numbers_change_the_protocol(home: Path) -> None:
    base = make_settings(home)
    fingerprint = heldout_protocol(base, SNAPSHOT).fingerprint
    assert heldout_protocol(make_settings(home, **{"evaluate.batch_size": 2}), SNAPSHOT).fingerprint == fingerprint
    assert (
        heldout_protocol(make_settings(home, **{"evaluate.temperature": 0.2}), SNAPSHOT).fingerprint == fingerprint
    ), "greedy decoding (K=1) ignores the temperature"
    changed = [{"evaluate.max_new_tokens": 64}, {"evaluate.limit": 2}, {"evaluate.samples": 2}]
    assert all(heldout_protocol(make_settings(home, **c), SNAPSHOT).fingerprint != fingerprint for c in changed)
    sampled = make_settings(home, **{"evaluate.samples": 2})
    hotter = make_settings(home, **{"evaluate.samples": 2, "evaluate.temperature": 0.2})
    assert heldout_protocol(sampled, SNAPSHOT).fingerprint != heldout_protocol(hotter, SNAPSHOT).fingerprint


def test_an_unknown_run_id_gets_a_new_run_tagged_with_the_request_and_a_warning(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(home, **{"evaluate.limit": 1})
    foreign = "0123456789abcdef0123456789abcdef"
    with caplog.at_level(logging.WARNING, logger="swerl.evaluate"):
        report = evaluate(settings, "some-model", SNAPSHOT, backend=_scripted(home, wrong=0), run_id=foreign)
    tags = mlflow_client(settings.tracking_uri).get_run(report.mlflow_run_id).data.tags
    assert report.mlflow_run_id != foreign and tags["evaluate.requested_run_id"] == foreign
    assert "does not exist" in tags["evaluate.requested_run_unresolved"]
    assert any(foreign in record.getMessage() for record in caplog.records), "no warning about the unknown run"


def test_other_mlflow_failures_reading_the_run_are_one_line_evaluate_errors(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"evaluate.limit": 1})

    def denied(self: MlflowClient, run_id: str) -> Any:
        raise MlflowException(f"User may not read run {run_id}\ndetails", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(MlflowClient, "get_run", denied)
    with pytest.raises(EvaluateError, match="cannot read MLflow run abc123") as refused:
        evaluate(settings, "some-model", SNAPSHOT, backend=_scripted(home, wrong=0), run_id="abc123")
    assert "\n" not in str(refused.value) and "may not read" in str(refused.value)
