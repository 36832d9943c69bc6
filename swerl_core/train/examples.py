"""Training examples from snapshot rows: GRPO prompts and SFT prompt/answer pairs.

A GRPO example is the SWE-RL prompt in TRL's conversational format plus the columns the reward needs
(``code_context``, ``oracle_new_content``, ``instance_id``). An SFT example adds the oracle answer: a
short ``<think>`` and SEARCH/REPLACE edits derived from the oracle, which scores exactly 1.0 under
:func:`swerl_core.reward.search_replace_reward`. Rows whose prompt (or answer) exceeds the recipe's
token budget are left out and counted, never truncated: a truncated code file would teach wrong edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swerl_core.errors import FormatError
from swerl_core.prompts import ChatTokenizer, chat_messages, oracle_answer, prompt_token_count
from swerl_core.reward import search_replace_reward
from swerl_core.search_replace import Edit, derive_edits
from swerl_core.snapshots import as_files

if TYPE_CHECKING:
    from datasets import Dataset

REWARD_COLUMNS = ("instance_id", "code_context", "oracle_new_content")
THOUGHT = "The issue: {title}. The cause is in {names}; change the faulty lines to fix it."


@dataclass(frozen=True)
class Examples:
    """A training dataset and how many snapshot rows were left out, and why."""

    dataset: Dataset
    dropped_too_long: int
    # SFT only: rows whose oracle change has no SEARCH/REPLACE answer scoring exactly 1.0
    dropped_unanswerable: int = 0


def oracle_completion(row: Mapping[str, Any]) -> str:
    """The oracle answer of a snapshot row: a short thought, then edits derived from the oracle content.

    Raises :class:`~swerl_core.search_replace.FormatError` when the change cannot be written as edits.
    """
    context = as_files(row["code_context"])
    new_content = as_files(row["oracle_new_content"])
    edits: list[Edit] = []
    for path in sorted(new_content):
        edits.extend(derive_edits(path, context.get(path, ""), new_content[path]))
    title = str(row["problem_statement"]).strip().splitlines()[0] if row["problem_statement"] else "the issue"
    names = ", ".join(sorted(new_content))
    thought = THOUGHT.format(title=title, names=names)
    return oracle_answer(thought, edits)


def grpo_examples(rows: Dataset, tokenizer: Any, max_prompt_length: int) -> Examples:
    """Conversational GRPO prompts of ``rows`` whose rendered prompt fits ``max_prompt_length`` tokens."""
    kept = [
        {
            "prompt": chat_messages(row["problem_statement"], as_files(row["code_context"])),
            **{column: row[column] for column in REWARD_COLUMNS},
        }
        for row in rows
        if prompt_tokens(tokenizer, row) <= max_prompt_length
    ]
    return Examples(_dataset(kept), len(rows) - len(kept))


def sft_examples(rows: Dataset, tokenizer: Any, max_prompt_length: int, max_completion_length: int) -> Examples:
    """Prompt/answer pairs (TRL's conversational prompt-completion format) that fit both budgets.

    Every answer is scored before it is kept: only answers with reward exactly 1.0 teach the format.
    """
    kept = []
    unanswerable = 0
    for row in rows:
        answer = _scored_oracle(row)
        if answer is None:
            unanswerable += 1
            continue
        answer_tokens = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
        if prompt_tokens(tokenizer, row) > max_prompt_length or answer_tokens >= max_completion_length:
            continue
        kept.append(
            {
                "prompt": chat_messages(row["problem_statement"], as_files(row["code_context"])),
                "completion": [{"role": "assistant", "content": answer}],
                "instance_id": row["instance_id"],
            }
        )
    return Examples(_dataset(kept), len(rows) - len(kept) - unanswerable, unanswerable)


def _scored_oracle(row: Mapping[str, Any]) -> str | None:
    try:
        answer = oracle_completion(row)
    except FormatError:
        return None
    context, oracle = as_files(row["code_context"]), as_files(row["oracle_new_content"])
    return answer if search_replace_reward(context, oracle, answer).reward == 1.0 else None


def prompt_tokens(tokenizer: ChatTokenizer, row: Mapping[str, Any]) -> int:
    """Length in tokens of a snapshot row's prompt, counted as curation counted it (:func:`prompt_token_count`)."""
    return prompt_token_count(tokenizer, row["problem_statement"], as_files(row["code_context"]))


def _dataset(records: list[dict[str, Any]]) -> Dataset:
    from datasets import Dataset

    return Dataset.from_list(records)
