"""The SWE-RL prompt: its content and its rendering through a real chat template."""

from __future__ import annotations

from transformers import ByT5Tokenizer

from swerl_core.prompts import (
    SYSTEM_PROMPT,
    chat_messages,
    oracle_answer,
    prompt_token_count,
    render_prompt,
    repair_prompt,
)
from swerl_core.reward import extract_solution
from swerl_core.search_replace import Edit, parse_edits

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_prompt_holds_issue_and_every_file_in_full() -> None:
    context = {"b.py": "def b():\n    return {'x': 1}\n", "a.py": "A = 1\n"}
    prompt = repair_prompt("  Crash on {braces} input  ", context)
    assert "<issue>\nCrash on {braces} input\n</issue>" in prompt
    assert prompt.index("### a.py") < prompt.index("### b.py")
    assert "def b():\n    return {'x': 1}\n" in prompt
    assert "<<<<<<< SEARCH" in prompt and ">>>>>>> REPLACE" in prompt


def test_example_in_the_prompt_parses_as_an_edit() -> None:
    assert parse_edits(repair_prompt("x", {}))["src/shop/cart.py"]


def test_messages_ask_for_think_then_solution() -> None:
    messages = chat_messages("issue", {"a.py": ""})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert SYSTEM_PROMPT.index("<think>") < SYSTEM_PROMPT.index("<solution>")


def test_render_uses_the_model_chat_template() -> None:
    tokenizer = ByT5Tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    text = render_prompt(tokenizer, "issue text", {"a.py": "x = 1\n"})
    assert text.startswith("<|system|>\n" + SYSTEM_PROMPT)
    assert "<|user|>\n" in text and "issue text" in text
    assert text.endswith("<|assistant|>\n")


def test_prompt_token_count_is_the_chat_template_rendering_the_model_is_fed() -> None:
    tokenizer = ByT5Tokenizer()  # one token per byte: the count is the rendered prompt's length in bytes
    tokenizer.chat_template = CHAT_TEMPLATE
    text = render_prompt(tokenizer, "issue text", {"a.py": "x = 1\n"})
    assert prompt_token_count(tokenizer, "issue text", {"a.py": "x = 1\n"}) == len(text.encode())


def test_oracle_answer_is_well_formed() -> None:
    answer = oracle_answer("  why  ", [Edit("a.py", "x", "y")])
    assert parse_edits(extract_solution(answer)) == {"a.py": [Edit("a.py", "x", "y")]}
