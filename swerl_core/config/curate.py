"""The settings of curation (``curate:`` in the YAML file, ``SWERL_CURATE__<KEY>`` in the environment).

One frozen dataclass, composed into :class:`swerl_core.config.Settings` as ``settings.curate`` and
checked once when it is built; errors name the key and what it accepts. Defaults follow the SWE-RL
paper (16k-token prompts) and SWE-rebench (1–15 changed code files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from swerl_core.config.checks import DAY_S, require, require_integer, require_number

DEFAULT_BOT_KEYWORDS = ("dependabot", "renovate", "bump", "automerge")


@dataclass(frozen=True)
class CurateConfig:
    """What a snapshot keeps: the filters of stages 1–9, retrieval, decontamination and the time split."""

    require_linked_issue: bool = True  # stage 1: keep only PRs that resolve an issue of their repository
    bot_keywords: tuple[str, ...] = DEFAULT_BOT_KEYWORDS  # stage 2: whole words in login, title or body
    min_code_files: int = 1  # stage 4: changed (non-test) code files per PR, inclusive bounds
    max_code_files: int = 15
    max_patch_lines: int = 1000  # stage 4: added + deleted lines of the code part
    min_issue_chars: int = 10  # stage 4: problem statement length after stripping
    max_prompt_tokens: int = 16384  # stage 4/6: the rendered prompt (system + issue + code context)
    tokenizer: Path | None = None  # local HF tokenizer dir with a chat template; None: estimate chars / chars_per_token
    chars_per_token: float = 4.0
    relevant_files: int = 3  # stage 6: unmodified files added to the code context (top-k that fit)
    retrieval: Literal["bm25", "none"] = "bm25"  # how relevant unmodified files are found
    max_candidate_bytes: int = 200_000  # larger source files are never offered as relevant files
    ranker_url: str | None = None  # OpenAI-compatible base URL (…/v1) of an optional LLM re-ranker
    ranker_model: str | None = None
    ranker_timeout_s: float = 30.0
    exclude_repos: tuple[str, ...] = ()  # stage 8: owner/name never taken
    benchmark_file: Path | None = None  # stage 8: JSONL or Parquet with repo, instance_id, patch/problem_statement
    heldout_after: datetime | None = None  # stage 9: merged strictly after this → held-out split
    base_model_cutoff: datetime | None = (
        None  # stage 9: the base model's training-data cutoff; held-out is after it too
    )
    executable_only: bool = False  # stage 10: keep only rows whose tests validated (execution.environments)
    # stage 10: which rows of declared repositories are validated: all, or the held-out ones only (what evaluation
    # runs; the training reward needs no tests), at a fraction of the cost; train rows are then not_validated.
    validate: Literal["all", "heldout"] = "all"
    batch_rows: int = 50_000  # PRs read from DuckDB per batch (bounds memory)
    duckdb_memory_mb: int = 1024  # DuckDB's memory limit while curation reads (it spills to disk beyond)

    def __post_init__(self) -> None:
        # An empty keyword is the pattern \b()\b, which matches every title: it would drop every pull request.
        require(
            all(isinstance(k, str) and k.strip() for k in self.bot_keywords),
            "curate.bot_keywords",
            f"words, none empty, got {list(self.bot_keywords)!r}",
        )
        require_integer("curate.min_code_files", self.min_code_files, 1, 1000)
        require_integer(
            "curate.max_code_files", self.max_code_files, self.min_code_files, 1000, note="at least min_code_files"
        )
        require_integer("curate.max_patch_lines", self.max_patch_lines, 1, 1_000_000)
        require_integer("curate.min_issue_chars", self.min_issue_chars, 0, 1_000_000)
        require_integer("curate.max_prompt_tokens", self.max_prompt_tokens, 256, 10_000_000)
        # A token holds at least one byte (a quarter of the widest UTF-8 character) and no tokenizer averages
        # 100 characters: outside these bounds the estimate chars / chars_per_token means nothing (or overflows).
        require_number("curate.chars_per_token", self.chars_per_token, 0.1, 100)
        require_integer("curate.relevant_files", self.relevant_files, 0, 100)
        require(self.retrieval in ("bm25", "none"), "curate.retrieval", "one of bm25, none")
        require_integer("curate.max_candidate_bytes", self.max_candidate_bytes, 1, 1_000_000_000)
        require(
            (self.ranker_url is None) == (self.ranker_model is None),
            "curate.ranker_url",
            "set together with curate.ranker_model (or both unset)",
        )
        require_number("curate.ranker_timeout_s", self.ranker_timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        for repo in self.exclude_repos:
            owner, _, name = repo.partition("/")
            require(bool(owner) and bool(name) and "/" not in name, "curate.exclude_repos", "entries like OWNER/NAME")
        require(self.validate in ("all", "heldout"), "curate.validate", f"all or heldout, got {self.validate!r}")
        require(
            self.validate == "all" or not self.executable_only,
            "curate.validate",
            "all when curate.executable_only is true (it would drop every train row, never validated)",
        )
        require_integer("curate.batch_rows", self.batch_rows, 1, 10_000_000)
        require_integer("curate.duckdb_memory_mb", self.duckdb_memory_mb, 64, 16_777_216)
