"""Resolved rate per checkpoint: each answer to an executable held-out instance run against its tests in the sandbox,
recorded per sample with why it did not resolve, summarised with the reward's calibration in the store and MLflow,
and the gate deciding on it (``registry.gate_on: resolved``), paired per instance like the reward."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from eval_world import ScriptedBackend, oracle_output
from execution_world import escape_attempts
from mlflow import MlflowClient

import swerl_core.registry.evidence as evidence
from swerl_core import curate, ingest
from swerl_core.config import Secret, Settings, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.learnable import build_learnable_world
from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.backends import Completion, Messages
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.instances import EvalInstance, heldout_instances
from swerl_core.evaluate.metrics import SampleResult
from swerl_core.evaluate.predictions import read_predictions
from swerl_core.evaluate.protocol import heldout_protocol
from swerl_core.evaluate.resolved import execution_summary, resolve_samples
from swerl_core.evaluate.rollout import score
from swerl_core.execution import Resolution
from swerl_core.models import experiment_id
from swerl_core.progress import ProgressReporter
from swerl_core.registry.evidence import evaluate_and_register
from swerl_core.runs import write_run_id
from swerl_core.store import Store

TOKEN = "ghp_learnableWorld0000000000000000000000"
K = 4  # samples per instance: the oracle's fix, a wrong edit, a malformed answer, a hostile edit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[EvalInstance]]:
    """A home holding the learnable world ingested and curated with ``learn/shop`` declared: its held-out rows are
    executable instances; the other repositories' are not."""
    root = tmp_path_factory.mktemp("resolved")
    world = build_learnable_world(root / "world", seed=0, prs_per_repo=4, heldout_share=0.5)
    home = root / "home"
    with FakeGitHub(world, token=TOKEN) as fake:
        settings = _settings(home, **{"github.api_url": fake.url, "github.seconds_between_requests": 0,
                                      "github.local_clones": True})  # fmt: skip
        assert ingest.run(settings, ingest.IngestRequest(repos=tuple(world.repos), token=Secret(TOKEN))).status == "ok"
    snapshot = curate.run(settings, curate.CurateRequest(name="resolved", heldout_after=world.heldout_after))
    instances = heldout_instances(settings.snapshots_dir, snapshot.id)
    assert {i.repo for i in instances if i.execution is not None} == {"learn/shop"}, instances
    return home, snapshot.id, instances


def _settings(home: Path, **overrides: Any) -> Settings:
    config = home.parent / "settings.yaml"
    config.write_text("execution:\n  test_timeout_s: 30\n  environments:\n"
                      '    - {repo: learn/shop, requirements: ["pytest"], test_selection: by_name}\n')  # fmt: skip
    base = {"home": home, "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}", "reward.workers": 1,
            "curate.relevant_files": 0, "evaluate.samples": K}  # fmt: skip
    return load_settings(config, env={}, overrides={**base, **overrides})


def _wrong(instance: EvalInstance) -> str:
    """A well-formed answer that edits the buggy file without fixing it (a comment at its top)."""
    path = sorted(instance.oracle_new_content)[0]
    return oracle_output(instance.code_context, {path: "# looked at\n" + instance.code_context[path]})


def _hostile(instance: EvalInstance, home: Path, outside: Path, port: int) -> str:
    """The oracle's fix behind an attack run when the tests import the module: it tries to write outside the work
    tree, read swerl's home (its mirrors hold every fix) and reach a socket listening on the host, and gives
    itself away (fails the import) if any of them works. Contained, it is a correct fix."""
    path, fixed = sorted(instance.oracle_new_content.items())[0]
    attack = escape_attempts(outside, home / "mirrors", port)
    return oracle_output(instance.code_context, {path: attack + fixed})


def _escape_marker(instance: EvalInstance) -> Path:
    """Where a hostile answer tries to write: beside this file, outside /tmp (private in the sandbox anyway)."""
    return Path(__file__).resolve().parent / f".{instance.instance_id}-escaped"


def _answers(
    instances: list[EvalInstance], home: Path, port: int = 9, base_only_malformed: bool = False
) -> ScriptedBackend:
    by_issue = {i.problem_statement.strip(): i for i in instances}

    def answer(messages: Messages, sample: int) -> str:
        instance = next(i for issue, i in by_issue.items() if issue in messages[-1]["content"])
        if base_only_malformed:
            return "no idea"
        return [
            oracle_output(instance.code_context, instance.oracle_new_content),
            _wrong(instance),
            "no idea",
            _hostile(instance, home, _escape_marker(instance), port),
        ][sample]

    return ScriptedBackend(answer)


def _checkpoint(home: Path, settings: Settings, name: str, base: Path | None = None) -> Path:
    client = MlflowClient(settings.tracking_uri)
    run = client.create_run(experiment_id(client, "swerl-train", home / "mlartifacts"), run_name=name).info.run_id
    client.log_param(run, "stage", "grpo")
    if base is not None:
        client.log_param(run, "base_model", str(base))
    path = home / "checkpoints" / name / "final"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_run_id(path.parent, run)
    return path


@pytest.mark.slow
def test_each_answer_is_run_against_its_tests_and_the_rate_and_calibration_are_recorded(
    world: tuple[Path, str, list[EvalInstance]],
) -> None:
    home, snapshot, instances = world
    settings = _settings(home)
    store = Store.for_settings(settings)
    model = _checkpoint(home, settings, "resolved-run")
    with socket.create_server(("127.0.0.1", 0)) as listening:  # a host service a hostile answer must not reach
        backend = _answers(instances, home, listening.getsockname()[1])
        report = evaluate(settings, str(model), snapshot, store=store, backend=backend)

    executable = [i for i in instances if i.execution is not None]
    lines = read_predictions(report.predictions_path)
    by_sample = {(line["instance_id"], line["sample"]): line for line in lines}
    for instance in instances:
        verdicts = [by_sample[(instance.instance_id, k)].get("resolution") for k in range(K)]
        if instance.execution is None:  # not executable: nothing ran, nothing is claimed
            assert verdicts == [None] * K
            continue
        # The hostile answer is a correct fix that fails its own import if any attack worked: resolved = contained.
        assert verdicts == ["resolved", "tests_failed", "did_not_apply", "resolved"], (instance.instance_id, verdicts)
        assert not _escape_marker(instance).exists()
        wrong = by_sample[(instance.instance_id, 1)]
        assert "did not pass" in wrong["resolution_detail"]

    execution = report.execution
    assert execution is not None and execution.executable_instances == len(executable) > 0
    resolved = Counter(line.get("resolution") for line in lines)["resolved"]
    assert execution.reasons["did_not_apply"] == len(executable)
    assert execution.resolved_rate == pytest.approx(resolved / (K * len(executable)))
    assert report.resolved_rate == execution.resolved_rate
    assert execution.lower <= execution.resolved_rate <= execution.upper
    cal = execution.calibration
    # The oracle (reward 1) outranks every unresolved answer and the hostile fix outranks the malformed one (-1).
    assert cal.count == K * len(executable) and cal.roc_auc is not None and cal.roc_auc >= 0.75
    assert cal.reliability and sum(b.count for b in cal.reliability) == cal.count

    run = MlflowClient(settings.tracking_uri).get_run(report.mlflow_run_id)
    metrics = run.data.metrics
    assert metrics["heldout.resolved_rate"] == pytest.approx(execution.resolved_rate)
    assert metrics["heldout.reward_auc"] == pytest.approx(cal.roc_auc)
    assert metrics["heldout.executable_instances"] == len(executable)
    assert metrics["heldout.resolution.did_not_apply"] == len(executable)
    artifacts = {a.path for a in MlflowClient(settings.tracking_uri).list_artifacts(
        report.mlflow_run_id, f"evaluations/{report.evaluation_id}")}  # fmt: skip
    assert f"evaluations/{report.evaluation_id}/reliability.png" in artifacts

    reused = evaluate(settings, str(model), snapshot, store=store, backend=backend, reuse=True)
    assert reused.reused and backend.calls == 1
    assert reused.execution == execution, "the store's row must give back what the runs said"
    assert heldout_protocol(settings, snapshot).execution is not None
    more_gold_runs = _settings(home, **{"execution.gold_runs": 5})  # curation's setting, not evaluation's
    assert heldout_protocol(more_gold_runs, snapshot).fingerprint == heldout_protocol(settings, snapshot).fingerprint
    off = _settings(home, **{"evaluate.execute": False})
    assert heldout_protocol(off, snapshot).execution is None
    assert heldout_protocol(off, snapshot).fingerprint != heldout_protocol(settings, snapshot).fingerprint


@pytest.mark.slow
def test_the_gate_decides_on_resolved_paired_with_the_base_and_reports_the_reward_modes(
    world: tuple[Path, str, list[EvalInstance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, snapshot, instances = world
    overrides = {"registry.gate_on": "resolved", "registry.model_name": "resolved-gate", "registry.alpha": 0.25,
                 "registry.without_champion": "trained_from"}  # fmt: skip
    settings = _settings(home, **overrides)
    store = Store.for_settings(settings)
    base = _checkpoint(home, settings, "resolved-base")
    evaluate(settings, str(base), snapshot, store=store, backend=_answers(instances, home, base_only_malformed=True))
    candidate = _checkpoint(home, settings, "resolved-candidate", base)
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=_answers(instances, home)))
    result = evaluate_and_register(settings, store, candidate, snapshot, who="alice")

    verdict = result.verdict
    assert verdict.candidate.measure == "resolved" and set(result.reports) == {"resolved", "greedy", "sampled"}
    executable = sum(1 for i in instances if i.execution is not None)
    assert verdict.comparison is not None and verdict.comparison.n_instances == executable
    assert verdict.trained_from is not None and verdict.trained_from.metrics.mean_reward == 0.0
    assert verdict.candidate.mean_reward > 0
    assert verdict.comparison.mean_difference == pytest.approx(verdict.candidate.mean_reward)
    tags = MlflowClient(settings.tracking_uri).get_model_version("resolved-gate", result.version).tags
    assert tags["gate.decided_by"] == "resolved" and tags["eval.measure"] == "resolved"
    assert tags["gate.measure"] == "resolved" and tags["gate.sampled.measure"] == "reward"
    assert re.fullmatch(r"pass|fail|inconclusive", tags["gate.sampled.verdict"])


@pytest.mark.slow
def test_gating_on_resolved_without_executable_instances_is_refused_with_the_reason(
    world: tuple[Path, str, list[EvalInstance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, snapshot, instances = world
    settings = _settings(home, **{"registry.gate_on": "resolved", "registry.model_name": "resolved-off",
                                  "evaluate.execute": False})  # fmt: skip
    monkeypatch.setattr(evidence, "evaluate", functools.partial(evaluate, backend=_answers(instances, home)))
    candidate = _checkpoint(home, settings, "resolved-off")
    with pytest.raises(Exception, match="registry.gate_on is resolved but the evaluation .* ran no tests"):
        evaluate_and_register(settings, Store.for_settings(settings), candidate, snapshot, who="alice")


@pytest.mark.slow
def test_executable_instances_without_a_sandbox_stop_the_evaluation_before_it_generates(
    world: tuple[Path, str, list[EvalInstance]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, snapshot, instances = world
    settings = _settings(home)
    backend = _answers(instances, home)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no bwrap to be found
    with pytest.raises(EvaluateError, match=r"bubblewrap.*; or set evaluate.execute: false") as err:
        evaluate(settings, str(_checkpoint(home, settings, "no-sandbox")), snapshot, backend=backend)
    assert "\n" not in str(err.value) and backend.calls == 0, "it must stop before generating"


@pytest.mark.slow
def test_an_answer_the_machine_cannot_check_out_is_not_run_and_the_others_are_judged(
    world: tuple[Path, str, list[EvalInstance]],
) -> None:
    home, snapshot, instances = world
    settings = _settings(home)
    [good, *_] = [i for i in instances if i.execution is not None]
    gone = dataclasses.replace(good.execution, instance_id="learn__shop-gone", base_commit="0" * 40)
    missing = dataclasses.replace(good, instance_id="learn__shop-gone", execution=gone)
    answer = oracle_output(good.code_context, good.oracle_new_content)
    results = [_sample(missing, answer), _sample(good, answer)]
    judged = resolve_samples(settings, [missing, good], results, ProgressReporter("t"))
    assert judged[0].resolution == "not_run" and "GitError" in judged[0].resolution_detail, judged[0]
    assert judged[1].resolution == "resolved"
    summary = execution_summary(judged)
    assert summary is not None and summary.resolved_rate == 1.0 and summary.reasons == {"not_run": 1, "resolved": 1}
    assert "1 samples not run" in summary.note


@pytest.mark.slow
def test_an_interrupt_stops_the_runs_not_started_yet(
    world: tuple[Path, str, list[EvalInstance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _, instances = world
    settings = _settings(home, **{"execution.workers": 1})
    good = next(i for i in instances if i.execution is not None)
    results = [_sample(good, oracle_output(good.code_context, {**good.oracle_new_content, "x.py": f"{k}\n"}), k)
               for k in range(6)]  # fmt: skip
    calls = []

    def slow(*args: object) -> object:
        calls.append(args)
        time.sleep(0.5)
        return Resolution("tests_failed")

    def interrupted_after_the_first(message: str, done: int = 0, total: int | None = None) -> None:
        if done >= 1:  # Ctrl-C lands in the main thread while it waits on the runs
            raise KeyboardInterrupt

    monkeypatch.setattr("swerl_core.evaluate.resolved.resolve", slow)
    with pytest.raises(KeyboardInterrupt):
        resolve_samples(settings, [good], results, interrupted_after_the_first)  # type: ignore[arg-type]
    assert len(calls) <= 2 < len(results), "the queued runs must be cancelled, not run after the interrupt"


def test_a_resolved_rate_must_rise_above_its_floor_and_gold_runs_leave_the_protocol_alone() -> None:
    from swerl_core.config import RegistryConfig
    from swerl_core.registry.gate import GateMetrics, gate

    nothing = GateMetrics("s", 2, 0.0, 0.0, "p", {"a": (0.0, 0.0), "b": (0.0, 0.0)}, "resolved")
    assert gate(nothing, None, RegistryConfig()).decision == "fail"
    some = GateMetrics("s", 2, 0.75, 0.0, "p", {"a": (1.0, 1.0), "b": (1.0, 0.0)}, "resolved")
    assert gate(some, None, RegistryConfig(alpha=0.25)).decision == "pass"
    rewards = dataclasses.replace(nothing, measure="reward")
    assert gate(rewards, None, RegistryConfig()).decision == "pass", "a reward floor is reached, as before"


def _sample(instance: EvalInstance, answer: str, sample: int = 0) -> SampleResult:
    """A scored sample of ``answer`` to ``instance``, as evaluation's rollouts make it."""
    [result] = score([instance], [[Completion(answer, 1)]])
    return dataclasses.replace(result, sample=sample)
