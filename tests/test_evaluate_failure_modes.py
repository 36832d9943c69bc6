"""Failure modes of an evaluation: every answer is sorted into the right outcome (format error by reason, SEARCH
not found / ambiguous, no-op, wrong file, truncated, exact match), with per-repository and per-size breakdowns, and
the rates reach MLflow as metrics at the checkpoint's training step."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eval_world import SNAPSHOT, ScriptedBackend, make_settings, oracle_output, write_snapshot

from swerl_core.evaluate.backends import Completion
from swerl_core.evaluate.evaluation import evaluate
from swerl_core.evaluate.failure_modes import evaluation_step, failure_rates, sample_outcomes, size_bucket
from swerl_core.evaluate.instances import EvalInstance, heldout_instances
from swerl_core.evaluate.rollout import score
from swerl_core.prompts import oracle_answer
from swerl_core.registry.versions import mlflow_client
from swerl_core.search_replace import Edit

CONTEXT = {"pkg/calc.py": "def add(a, b):\n    return a - b\n\n\ndef twice(x):\n    return x\n\n\npass\npass\n"}
ORACLE = {"pkg/calc.py": CONTEXT["pkg/calc.py"].replace("return a - b", "return a + b")}
INSTANCE = EvalInstance("acme__calc-1", "acme/calc", "add subtracts", CONTEXT, ORACLE)


def _answer(*edits: Edit) -> str:
    return oracle_answer("Look at add.", list(edits))


ANSWERS = {
    "exact_match": oracle_output(CONTEXT, ORACLE),
    "format.missing_tag": "the fix is to add",
    "format.duplicate_tag": "<think>a</think><think>b</think><solution></solution>",
    "format.empty_thought": "<think> </think>\n<solution>\nx\n</solution>",
    "format.no_block": "<think>\nadd is wrong\n</think>\n<solution>\njust add\n</solution>",
    "apply.search_not_found": _answer(Edit("pkg/calc.py", "    return a * b", "    return a + b")),
    "apply.search_ambiguous": _answer(Edit("pkg/calc.py", "pass", "print(1)")),
    "noop": _answer(Edit("pkg/calc.py", "    return x", "    return x")),
    "wrong_file": _answer(Edit("pkg/other.py", "", "x = 1")),
}


def _outcomes(answer: str, tokens: int = 10) -> set[str]:
    [result] = score([INSTANCE], [[Completion(answer, tokens)]])
    return sample_outcomes(result, INSTANCE, max_new_tokens=64)


@pytest.mark.parametrize("expected", sorted(ANSWERS))
def test_each_answer_is_sorted_into_its_failure_mode(expected: str) -> None:
    outcomes = _outcomes(ANSWERS[expected])
    assert expected in outcomes, outcomes
    assert ("exact_match" in outcomes) == (expected == "exact_match")


def test_an_answer_that_used_the_whole_token_budget_is_truncated() -> None:
    cut = ANSWERS["exact_match"][: len(ANSWERS["exact_match"]) // 2]
    assert _outcomes(cut, tokens=64) == {"truncated", "format.missing_tag"}
    assert "truncated" not in _outcomes(ANSWERS["exact_match"], tokens=63)


def test_rates_are_per_sample_with_repo_and_size_breakdowns() -> None:
    big = replace(INSTANCE, instance_id="acme__big-2", repo="acme/big", oracle_new_content={"pkg/calc.py": "x\n" * 60})
    answers = [[Completion(ANSWERS["exact_match"], 5), Completion(ANSWERS["format.no_block"], 5)], [Completion("", 5)]]
    rates = failure_rates(score([INSTANCE, big], answers), [INSTANCE, big], max_new_tokens=64)
    assert rates["failure.exact_match"] == pytest.approx(1 / 3) and rates["failure.format"] == pytest.approx(2 / 3)
    assert rates["failure.format.no_block"] == pytest.approx(1 / 3)
    assert rates["failure.repo.acme/calc.exact_match"] == 0.5 and rates["failure.repo.acme/big.format"] == 1.0
    assert (size_bucket(INSTANCE), size_bucket(big)) == ("small", "large")
    assert rates["failure.size.small.samples"] == 2.0 and rates["failure.size.large.format"] == 1.0


def test_evaluation_step_comes_from_the_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "checkpoint-40"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 40}))
    (tmp_path / "run" / "final").mkdir()
    assert evaluation_step(ckpt) == 40 and evaluation_step(tmp_path / "run" / "final") == 40
    assert evaluation_step(tmp_path) == 0


def test_failure_rates_are_logged_to_mlflow_at_the_checkpoint_step(tmp_path: Path) -> None:
    write_snapshot(tmp_path, n_heldout=3)
    settings = make_settings(tmp_path)
    ckpt = tmp_path / "checkpoints" / "grpo" / "checkpoint-12"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 12}))
    instances = heldout_instances(settings.snapshots_dir, SNAPSHOT)
    by_issue = {i.problem_statement.strip(): i for i in instances}

    def answer(messages: list[dict[str, str]], sample: int) -> str:
        inst = next(i for issue, i in by_issue.items() if issue in messages[-1]["content"])
        return "no tags" if inst is instances[0] else oracle_output(inst.code_context, inst.oracle_new_content)

    report = evaluate(settings, str(ckpt), SNAPSHOT, backend=ScriptedBackend(answer))
    assert report.step == 12 and report.failure_rates["failure.format.missing_tag"] == pytest.approx(1 / 3)
    history = mlflow_client(settings.tracking_uri).get_metric_history(
        report.mlflow_run_id, "heldout.failure.format.missing_tag"
    )
    assert [(m.step, round(m.value, 4)) for m in history] == [(12, 0.3333)]
    exact = mlflow_client(settings.tracking_uri).get_metric_history(report.mlflow_run_id, "heldout.failure.exact_match")
    assert exact[0].value == pytest.approx(2 / 3)
