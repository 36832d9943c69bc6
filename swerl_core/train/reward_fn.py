"""The SWE-RL reward as a TRL reward function: batched, multi-core, and self-reporting.

TRL calls :class:`SweRLReward` once per generation batch with ``prompts``, ``completions`` and every
dataset column as keyword arguments; the snapshot's ``code_context`` and ``oracle_new_content`` come
through that way. Scores come from :func:`swerl_core.reward.batch_rewards` (a malformed answer is −1);
the adapter reports the format-error rate and the seconds spent scoring through TRL's ``log_metric``,
keeps a few sample completions for the MLflow table, and can append the instance ids of each step to
a JSON-lines file (which rows each step trained on; the resume test compares it).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.reward import RewardItem, RewardResult, batch_rewards
from swerl_core.snapshots import as_files

# Long completions are cut in the sample table so that a step's artifact stays small.
SAMPLE_TEXT_CHARS = 4000


@dataclass(frozen=True)
class Sample:
    """One scored rollout kept for the sample-completions table."""

    step: int
    instance_id: str
    reward: float
    error: str | None
    completion: str


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of a TRL completion: a plain string, or the content of its conversational messages."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content") or "") for message in completion)


class SweRLReward:
    """A TRL reward function scoring SEARCH/REPLACE answers against the oracle (−1 on a format error)."""

    def __init__(self, workers: int = 0, samples_to_keep: int = 16, order_log: Path | None = None) -> None:
        self.__name__ = "swerl"  # TRL names the metric rewards/<__name__>/mean
        self.workers = workers
        self.order_log = order_log
        self.first_samples: list[Sample] = []
        self.recent_samples: deque[Sample] = deque(maxlen=samples_to_keep)
        self._samples_to_keep = samples_to_keep

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        code_context: Sequence[Any],
        oracle_new_content: Sequence[Any],
        instance_id: Sequence[str] | None = None,
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_columns: Any,
    ) -> list[float]:
        """Rewards of ``completions`` in order; also reports ``format_error_rate`` and ``reward_time_s``."""
        texts = [completion_text(c) for c in completions]
        items = [
            RewardItem(as_files(ctx), as_files(oracle), output=text)
            for ctx, oracle, text in zip(code_context, oracle_new_content, texts, strict=True)
        ]
        start = time.perf_counter()
        results = batch_rewards(items, workers=self.workers)
        seconds = time.perf_counter() - start
        if log_metric is not None:
            log_metric("format_error_rate", format_error_rate(results))
            log_metric("reward_time_s", seconds)
        # TRL scores the batch of step global_step + 1 before that step's update.
        step = int(getattr(trainer_state, "global_step", 0)) + 1
        ids = list(instance_id) if instance_id is not None else [""] * len(texts)
        self._keep_samples(step, ids, texts, results)
        if self.order_log is not None:
            self._log_order(step, ids)
        return [result.reward for result in results]

    @property
    def samples(self) -> list[Sample]:
        """Kept samples: those of the first scored batch, then the most recent ones."""
        recent = [s for s in self.recent_samples if s not in self.first_samples]
        return self.first_samples + recent

    def _keep_samples(self, step: int, ids: list[str], texts: list[str], results: list[RewardResult]) -> None:
        for iid, text, result in zip(ids, texts, results, strict=True):
            sample = Sample(step, iid, result.reward, result.error, text[:SAMPLE_TEXT_CHARS])
            if len(self.first_samples) < self._samples_to_keep and (
                not self.first_samples or self.first_samples[0].step == step
            ):
                self.first_samples.append(sample)
            self.recent_samples.append(sample)

    def _log_order(self, step: int, ids: list[str]) -> None:
        groups = list(dict.fromkeys(ids))  # one id per prompt group, in order
        self.order_log.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        with open(self.order_log, "a", encoding="utf-8") as out:  # type: ignore[arg-type]
            out.write(json.dumps({"step": step, "instance_ids": groups}) + "\n")


def format_error_rate(results: Sequence[RewardResult]) -> float:
    """Fraction of results that broke the answer format (0.0 for an empty batch)."""
    return sum(r.is_format_error for r in results) / len(results) if results else 0.0
