"""``swerl demo``: the pipeline on the offline sample world, narrated step by step.

Today it shows the SWE-RL prompt and reward on a worked example (an issue, the code around it, the
developer's fix, and several model answers from perfect to malformed), then scores a GRPO-sized
batch to show the batch path. Later stages append their steps here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from swerl_core.config import Settings
from swerl_core.prompts import oracle_answer, repair_prompt
from swerl_core.reward import RewardItem, batch_rewards, search_replace_reward
from swerl_core.search_replace import Edit, derive_edits

ISSUE = """\
slugify() keeps trailing dashes

`slugify("Hello, World!")` returns `"hello-world-"`; I expected `"hello-world"`.
Punctuation at the end of the title should not leave a dash behind."""

BEFORE = '''\
"""Turn titles into URL slugs."""

import re

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """Lower-case ``title`` and join its words with dashes."""
    return _NON_WORD.sub("-", title.lower()).lstrip("-")
'''

AFTER = BEFORE.replace('.lstrip("-")', '.strip("-")')
PATH = "src/textkit/slug.py"


@dataclass(frozen=True)
class Answer:
    """A labelled model answer of the worked example."""

    label: str
    text: str


def worked_answers() -> list[Answer]:
    """Answers to the worked example, from the developer's own fix to malformed ones."""
    oracle = oracle_answer("The regex leaves a dash at the end; strip both sides.", derive_edits(PATH, BEFORE, AFTER))
    partial = oracle_answer(
        "Remove the trailing dash with rstrip.",
        [
            Edit(
                PATH,
                '    return _NON_WORD.sub("-", title.lower()).lstrip("-")',
                '    return _NON_WORD.sub("-", title.lower()).lstrip("-").rstrip("-")',
            )
        ],
    )
    wrong_file = oracle_answer(
        "Maybe the caller is at fault.",
        [Edit("src/textkit/__init__.py", "", '"""textkit."""\n')],
    )
    no_think = oracle.replace("<think>", "")
    missing = oracle_answer(
        "Edit a line that is not there.", [Edit(PATH, "    return title", "    return title.strip()")]
    )
    return [
        Answer("the developer's fix, as SEARCH/REPLACE", oracle),
        Answer("a different but valid fix", partial),
        Answer("an edit to an unrelated new file", wrong_file),
        Answer("no <think> tag", no_think),
        Answer("SEARCH block not in the file", missing),
    ]


def run_demo(settings: Settings, out: TextIO) -> None:
    """Print the worked example: prompt, answers with their rewards, and a batch timing."""
    context = {PATH: BEFORE}
    oracle = {PATH: AFTER}
    out.write("== SWE-RL prompt (user message) ==\n")
    out.write(repair_prompt(ISSUE, context)[:900] + "\n…\n\n")
    out.write("== Rewards of five answers ==\n")
    answers = worked_answers()
    for answer in answers:
        result = search_replace_reward(context, oracle, answer.text)
        reason = f"  ({result.error})" if result.error else ""
        out.write(f"{result.reward:+.4f}  {answer.label}{reason}\n")
    items = [RewardItem(context, oracle, output=a.text) for a in answers] * 96
    start = time.perf_counter()
    results = batch_rewards(items, workers=settings.reward.workers)
    elapsed = time.perf_counter() - start
    out.write(
        f"\nScored a batch of {len(results)} rollouts (32 prompts x 16 rollouts would be 512) "
        f"in {elapsed * 1000:.1f} ms; mean reward {sum(r.reward for r in results) / len(results):+.4f}\n"
    )
