"""Rollouts of one evaluation: generate K completions per instance, then score and apply each one.

Generation goes through any :class:`~swerl_core.evaluate.backends.GenerationBackend`, reporting progress;
scoring uses the training reward (:func:`swerl_core.reward.batch_rewards`, every core) so held-out
numbers mean what training rewards mean; each prediction is applied to its base files in a temporary
copy (:func:`~swerl_core.evaluate.checkout.apply_in_copy`) to get its patch and refuse escaping paths.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from swerl_core.evaluate.backends import Completion, GenerationBackend
from swerl_core.evaluate.checkout import apply_in_copy
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import SampleResult
from swerl_core.progress import ProgressReporter
from swerl_core.reward import RewardItem, batch_rewards, predicted_content
from swerl_core.search_replace import FormatError


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds spent generating and scoring (reward + apply)."""

    generation_s: float
    reward_s: float


def generate(
    instances: Sequence[EvalInstance],
    backend: GenerationBackend,
    samples: int,
    say: ProgressReporter | None = None,
) -> list[list[Completion]]:
    """``samples`` completions per instance from ``backend``, reporting instances done to ``say``."""
    report = say or ProgressReporter("evaluate")
    total = len(instances)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        report(f"rollouts: {done}/{total} instances", done, total)

    report(f"rollouts: 0/{total} instances", 0, total)
    return backend.generate([i.messages() for i in instances], samples, advance)


def score(
    instances: Sequence[EvalInstance], completions: Sequence[Sequence[Completion]], reward_workers: int = 0
) -> list[SampleResult]:
    """One :class:`SampleResult` per completion: reward, format error, apply check and patch."""
    items = [
        RewardItem(inst.code_context, inst.oracle_new_content, output=c.text)
        for inst, group in zip(instances, completions, strict=True)
        for c in group
    ]
    rewards = iter(batch_rewards(items, workers=reward_workers))
    results = []
    for inst, group in zip(instances, completions, strict=True):
        for index, completion in enumerate(group):
            reward = next(rewards)
            try:
                new_content = predicted_content(inst.code_context, completion.text)
            except FormatError:
                new_content = {}
            applied = apply_in_copy(inst.code_context, new_content) if new_content else None
            results.append(
                SampleResult(
                    instance_id=inst.instance_id,
                    repo=inst.repo,
                    sample=index,
                    output=completion.text,
                    reward=reward.reward,
                    error=reward.error,
                    applied=applied is not None and not applied.refused,
                    refused_paths=applied.refused if applied else (),
                    model_patch=applied.patch if applied else "",
                    tokens=completion.tokens,
                )
            )
    return results


def rollout(
    instances: Sequence[EvalInstance],
    backend: GenerationBackend,
    samples: int,
    say: ProgressReporter | None = None,
    reward_workers: int = 0,
) -> tuple[list[SampleResult], Timings]:
    """Generate and score every instance; returns the sample results and where the time went."""
    start = time.perf_counter()
    completions = generate(instances, backend, samples, say)
    generated = time.perf_counter()
    results = score(instances, completions, reward_workers)
    return results, Timings(generated - start, time.perf_counter() - generated)
