"""The SWE-RL input (paper §2.1, Figure 2): a system message that asks for ``<think>`` then ``<solution>``,
and a repair prompt holding the issue, the code files and the SEARCH/REPLACE instructions.

This module owns the wording and its rendering through a model's chat template; it never scores
answers (:mod:`swerl_core.reward`) and never loads a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from swerl_core.search_replace import Edit, render_edits

SYSTEM_PROMPT = """\
You will be given a task by a user. Before you answer, reason about it privately, as if on scratch paper:
explore the problem, form hypotheses, check them. Then give your final answer.

Your reply must follow exactly this layout:
<think>
your reasoning, as long as you need
</think>
<solution>
your final answer
</solution>"""

_EXAMPLE = render_edits(
    [
        Edit(
            path="src/shop/cart.py",
            search="    def total(self):\n        return sum(item.price for item in self.items)",
            replace=("    def total(self):\n        return sum(item.price * item.quantity for item in self.items)"),
        )
    ]
)

REPAIR_TEMPLATE = """\
Below is an issue reported against our repository, followed by the source files that may be involved.
Some of the files are likely relevant to the issue, others may not be.

<issue>
{issue}
</issue>

<code>
{files}
</code>

Find the cause of the issue, then fix it with *SEARCH/REPLACE* edits. Each edit is a fenced code block:
1. the line `### ` followed by the file path;
2. the line `<<<<<<< SEARCH`;
3. a contiguous run of lines copied exactly from the current file (indentation included);
4. the line `=======`;
5. the lines that should replace them;
6. the line `>>>>>>> REPLACE`.

Example:

{example}

Indentation matters: write every line in full, with its leading spaces. The SEARCH lines must appear
in the file exactly as written. Put each edit in its own code block; use as many edits as the fix needs."""

FILE_TEMPLATE = "### {path}\n```\n{content}\n```"


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer that renders chat messages."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """Render messages with the model's chat template."""
        ...


def format_files(code_context: Mapping[str, str]) -> str:
    """The code files of a prompt, each as its path and full content, in path order."""
    return "\n\n".join(
        FILE_TEMPLATE.format(path=path, content=content) for path, content in sorted(code_context.items())
    )


def repair_prompt(issue: str, code_context: Mapping[str, str]) -> str:
    """The user message of SWE-RL: the issue, the code files, and the SEARCH/REPLACE instructions."""
    return REPAIR_TEMPLATE.format(issue=issue.strip(), files=format_files(code_context), example=_EXAMPLE)


def chat_messages(issue: str, code_context: Mapping[str, str]) -> list[dict[str, str]]:
    """System + user messages of one SWE-RL prompt, in the conversational format TRL and vLLM take."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": repair_prompt(issue, code_context)},
    ]


def render_prompt(tokenizer: ChatTokenizer, issue: str, code_context: Mapping[str, str]) -> str:
    """The prompt text as the model sees it: the messages through its chat template, ready to generate."""
    return str(
        tokenizer.apply_chat_template(chat_messages(issue, code_context), tokenize=False, add_generation_prompt=True)
    )


def prompt_token_count(tokenizer: ChatTokenizer, issue: str, code_context: Mapping[str, str]) -> int:
    """Tokens of the prompt for ``issue`` and ``code_context`` exactly as training feeds it to the model.

    The messages go through the model's chat template and are tokenized in the same call, as TRL's GRPO
    and SFT trainers do (``apply_chat_template(tokenize=True, add_generation_prompt=True)``: the template
    holds the special tokens, the tokenizer adds none). Curation's budget and training's length filter
    both count with this function, so a row that fits one fits the other.
    """
    encoded = tokenizer.apply_chat_template(
        chat_messages(issue, code_context), tokenize=True, add_generation_prompt=True, return_dict=True
    )
    return len(encoded["input_ids"])


def fixed_wording() -> tuple[str, ...]:
    """The text every SWE-RL prompt shares, in order: the system message, then the repair prompt's wording before
    the issue, between the issue and the files, and after the files (the example included).

    A tokenizer built for this prompt (the tiny models') can hold each as one token: they carry no information that
    differs between prompts, so a small model need not spend its context reading them.
    """
    issue, files = "\x00", "\x01"
    before_issue, rest = REPAIR_TEMPLATE.format(issue=issue, files=files, example=_EXAMPLE).split(issue)
    between, after_files = rest.split(files)
    return SYSTEM_PROMPT, before_issue, between, after_files


def oracle_answer(thought: str, edits: list[Edit]) -> str:
    """A well-formed answer: ``thought`` in ``<think>`` and ``edits`` as SEARCH/REPLACE blocks in ``<solution>``."""
    return f"<think>\n{thought.strip()}\n</think>\n<solution>\n{render_edits(edits)}\n</solution>"
