"""Shared pieces of the evaluate/registry tests: settings on a temp home, a sample snapshot, oracle answers,
a scripted generation backend and the tiny model (built once per process)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from swerl_core.config import Settings, load_settings
from swerl_core.evaluate.backends import Completion, Messages, Progress
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.prompts import oracle_answer
from swerl_core.search_replace import derive_edits

SNAPSHOT = "sample-eval-v1"


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings on ``home`` with a sqlite MLflow there, one reward process, plus ``overrides``."""
    base = {
        "home": home,
        "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "reward.workers": 1,
    }
    return load_settings(env={}, overrides={**base, **overrides})


def write_snapshot(home: Path, n_heldout: int = 4) -> str:
    """A small snapshot in the contract format under ``home``; returns its id."""
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    write_sample_snapshot(home, SNAPSHOT, n_train=2, n_heldout=n_heldout)
    return SNAPSHOT


def oracle_output(code_context: Mapping[str, str], oracle_new_content: Mapping[str, str]) -> str:
    """A well-formed answer whose edits turn the code context into the oracle (reward 1.0)."""
    edits = [e for path, new in oracle_new_content.items() for e in derive_edits(path, code_context.get(path, ""), new)]
    return oracle_answer("The fix follows from the issue.", edits)


class ScriptedBackend:
    """A generation backend answering each prompt with ``answer(messages, sample_index)``."""

    name = "scripted"

    def __init__(self, answer: Callable[[Messages, int], str]) -> None:
        self.answer = answer
        self.calls = 0

    def generate(self, prompts: Sequence[Messages], samples: int, progress: Progress) -> list[list[Completion]]:
        """Scripted completions, ``samples`` per prompt."""
        self.calls += 1
        out = [[Completion(self.answer(m, k), 7) for k in range(samples)] for m in prompts]
        progress(len(prompts))
        return out


def answers_by_issue(
    instances: Sequence[EvalInstance], wrong: frozenset[str] = frozenset()
) -> Callable[[Messages, int], str]:
    """An answer function: the oracle answer for each instance, a malformed one for ids in ``wrong``."""
    by_issue = {i.problem_statement.strip(): i for i in instances}

    def answer(messages: Messages, sample: int) -> str:
        user = messages[-1]["content"]
        inst = next(i for issue, i in by_issue.items() if issue in user)
        if inst.instance_id in wrong:
            return "no idea"
        return oracle_output(inst.code_context, inst.oracle_new_content)

    return answer


@functools.cache
def tiny_model_dir() -> Path:
    """A very small random Llama with a trained tokenizer and chat template, built once per process."""
    from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model

    spec = TinyModelSpec(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        max_positions=4096,
    )
    root = tempfile.mkdtemp(prefix="swerl-tiny-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return init_tiny_model(Path(root) / "model", spec)
