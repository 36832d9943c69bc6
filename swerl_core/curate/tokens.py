"""Prompt size in tokens: the rendered SWE-RL prompt (system message + repair prompt) against the budget.

With a tokenizer configured the count is exact and is training's own count
(:func:`swerl_core.prompts.prompt_token_count`: the messages through the model's chat template), so a
row curation keeps is never dropped by training's length filter; a tokenizer without a chat template is
refused, as training refuses it. Without one the count is an estimate, ``ceil(chars / chars_per_token)``
over the rendered messages plus :data:`CHAT_TEMPLATE_MARGIN` tokens for the template's own markup (4
characters per token is the usual rule of thumb for English and code under BPE tokenizers; it
under-counts dense code by ~10–20 %, so set a tokenizer when the budget is tight). The character count
can also be computed without the text, from lengths alone (:func:`prompt_chars_expr`), which is how
stage 4 filters millions of rows. Never downloads a tokenizer: ``tokenizer`` must be a local directory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from swerl_core.curate.errors import CurateError
from swerl_core.prompts import FILE_TEMPLATE, chat_messages, prompt_token_count

CHAT_TEMPLATE_MARGIN = 32  # role markers and special tokens a chat template adds around two messages
BASE_PROMPT_CHARS = sum(len(m["content"]) for m in chat_messages("", {}))  # system + repair prompt, no issue/files
FILE_OVERHEAD_CHARS = len(FILE_TEMPLATE.format(path="", content="")) + 2  # plus the blank line between files


def prompt_chars_expr(issue_chars: pl.Expr, files_chars: pl.Expr, n_files: pl.Expr) -> pl.Expr:
    """Characters of the rendered messages from lengths: issue, Σ(path + content) of the files, file count."""
    return pl.lit(BASE_PROMPT_CHARS) + issue_chars + files_chars + n_files * FILE_OVERHEAD_CHARS


def estimated_tokens_expr(chars: pl.Expr, chars_per_token: float) -> pl.Expr:
    """The chars-per-token estimate of a prompt of ``chars`` characters, template margin included."""
    return (chars / chars_per_token).ceil().cast(pl.Int64) + CHAT_TEMPLATE_MARGIN


class PromptCounter:
    """Counts the tokens of one SWE-RL prompt, exactly (local tokenizer) or by the chars-per-token estimate."""

    def __init__(self, tokenizer_path: Path | None, chars_per_token: float) -> None:
        self.chars_per_token = chars_per_token
        self._tokenizer: Any = None
        if tokenizer_path is not None:
            self._tokenizer = _load_tokenizer(tokenizer_path)

    @property
    def exact(self) -> bool:
        """Whether counts come from a real tokenizer."""
        return self._tokenizer is not None

    def count(self, issue: str, code_context: Mapping[str, str]) -> int:
        """Tokens of the prompt for ``issue`` and ``code_context`` (as the model would see it)."""
        if self._tokenizer is None:
            chars = sum(len(m["content"]) for m in chat_messages(issue, code_context))
            return math.ceil(chars / self.chars_per_token) + CHAT_TEMPLATE_MARGIN
        return prompt_token_count(self._tokenizer, issue, code_context)


# Model weights that may share a directory with the tokenizer: they never change how text is tokenized.
_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx"})


def tokenizer_digest(path: Path) -> str:
    """A SHA-256 over the names and contents of the tokenizer's files in directory ``path`` (weights left out).

    Part of a snapshot's inputs: the same directory holding another tokenizer counts prompts differently.
    """
    root = Path(path)
    if not root.is_dir():
        raise CurateError(f"curate.tokenizer {path} is not a directory holding a Hugging Face tokenizer")
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = file.relative_to(root)
        if file.suffix in _WEIGHT_SUFFIXES or any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(f"{relative.as_posix()}\0{file.stat().st_size}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _load_tokenizer(path: Path) -> Any:
    if not Path(path).is_dir():
        raise CurateError(f"curate.tokenizer {path} is not a directory holding a Hugging Face tokenizer")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CurateError(f"cannot load tokenizer from {path}: {str(exc).splitlines()[0]}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise CurateError(f"curate.tokenizer {path} has no chat template; SWE-RL prompts are chat messages")
    return tokenizer
