"""Stages 1–5 of curation as pure functions over Polars frames (one row per pull request).

Each stage is a *reason expression*: null keeps the row, a string names why it is dropped (the first
rule that matches wins). :func:`apply_stage` evaluates one, records the counts in the funnel and
filters. Stage 5 (the test/code split) is a transform, :func:`split_patches`, that runs before the
code-only and size stages because both judge the code part. Nothing here touches the store or git.

1. linked issue in the same repository
2. bots out
3. code only: paths a work tree may hold, the same files named by the patch and the file rows, code among them
4. size limits
5. test/code split by path segments (see :mod:`swerl_core.file_kinds`), each section's path read as git writes it
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

from swerl_core.config.curate import CurateConfig
from swerl_core.curate.funnel import FunnelCounter
from swerl_core.curate.patches import changed_lines_expr, version_lines_expr
from swerl_core.curate.tokens import estimated_tokens_expr, prompt_chars_expr
from swerl_core.diff_paths import section_paths
from swerl_core.file_kinds import CODE, TEST, file_kind_expr, language_expr
from swerl_core.paths import is_work_tree_path


def apply_stage(frame: pl.DataFrame, stage: str, reason: pl.Expr, funnel: FunnelCounter) -> pl.DataFrame:
    """Drop the rows for which ``reason`` is not null, counting them by reason under ``stage``."""
    marked = frame.with_columns(reason.alias("_reason"))
    counts = marked.get_column("_reason").drop_nulls().value_counts()
    funnel.record(stage, frame.height, dict(counts.iter_rows()))
    return marked.filter(pl.col("_reason").is_null()).drop("_reason")


LINKS_INCOMPLETE = "links_incomplete_without_graphql"
"""Stage 1's reason for a PR with no issue yet whose links ingest could not take from GraphQL (no token, or no
GraphQL access): the next ingest with a token completes them, and the PR may then link one."""


def linked_issue_reason(cfg: CurateConfig) -> pl.Expr:
    """Stage 1: a merged PR must resolve at least one stored issue of its own repository."""
    if not cfg.require_linked_issue:
        return pl.lit(None, dtype=pl.String)
    has_issue = pl.col("issue_numbers").list.len() > 0
    return (
        pl.when(has_issue)
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("links_missing_source") == "graphql")
        .then(pl.lit(LINKS_INCOMPLETE))
        .when(pl.col("issues_missing") > 0)
        .then(pl.lit("linked_issue_not_stored"))
        .when(pl.col("issues_gone") > 0)
        .then(pl.lit("linked_issue_deleted_or_transferred"))
        .when(pl.col("issues_elsewhere") > 0)
        .then(pl.lit("issue_in_other_repo"))
        .otherwise(pl.lit("no_linked_issue"))
    )


def bot_reason(cfg: CurateConfig) -> pl.Expr:
    """Stage 2: bot authors, ``[bot]`` logins, and bot keywords (whole words) in login, title or body."""
    login = pl.col("author_login").fill_null("")
    is_bot = (pl.col("author_type").fill_null("") == "Bot") | pl.col("author_is_bot") | login.str.ends_with("[bot]")
    reason = pl.when(is_bot).then(pl.lit("bot_author"))
    if cfg.bot_keywords:
        pattern = r"(?i)\b(" + "|".join(re.escape(k) for k in cfg.bot_keywords) + r")\b"
        text = pl.concat_str([login, pl.col("title"), pl.col("body")], separator="\n")
        reason = reason.when(text.str.contains(pattern)).then(pl.lit("bot_keyword"))
    return reason.otherwise(pl.lit(None, dtype=pl.String))


def file_summary(files: pl.DataFrame) -> pl.DataFrame:
    """Per PR, from its changed-file rows: counts by kind, content problems of code files, context size, languages,
    the sorted paths, and whether any path (old or new) is one no work tree file may have
    (:func:`swerl_core.paths.is_work_tree_path`).

    ``files`` holds the columns of :func:`swerl_core.curate.source.changed_files`.
    """
    kinds = files.with_columns(
        kind=file_kind_expr(pl.col("path")),
        language=language_expr(pl.col("path")),
        unsafe=~_per_unique(pl.col("path"), is_work_tree_path)
        | (pl.col("old_path").is_not_null() & ~_per_unique(pl.col("old_path"), is_work_tree_path)),
    )
    code = pl.col("kind") == CODE
    at_base = code & (pl.col("status") != "A")
    needs_old = pl.col("status").is_in(["M", "D", "R"])
    needs_new = pl.col("status").is_in(["A", "M", "R"])
    missing = (needs_old & ~pl.col("old_readable")) | (needs_new & ~pl.col("new_readable"))
    return kinds.group_by("repo", "pr_number").agg(
        n_files_stored=pl.len().cast(pl.Int64),
        n_code_files=code.sum().cast(pl.Int64),
        n_test_files=(pl.col("kind") == TEST).sum().cast(pl.Int64),
        other_kinds=pl.col("kind").filter(~pl.col("kind").is_in([CODE, TEST])).unique().sort(),
        code_binary=(code & (pl.col("is_binary") | pl.col("blob_binary"))).any(),
        code_non_utf8=(code & pl.col("invalid_utf8")).any(),
        code_too_large=(code & pl.col("too_large")).any(),
        code_missing=(code & missing).any(),
        code_renamed=(code & (pl.col("status") == "R")).any(),
        context_chars=(pl.col("path").str.len_chars() + pl.col("old_chars")).filter(at_base).sum().cast(pl.Int64),
        n_context_files=at_base.sum().cast(pl.Int64),
        languages=pl.col("language").filter(code).unique().sort(),
        paths=pl.col("path").sort(),
        unsafe_path=pl.col("unsafe").any(),
    )


_FLAGS = ("code_binary", "code_non_utf8", "code_too_large", "code_missing", "code_renamed", "unsafe_path")


def with_file_summary(frame: pl.DataFrame, summary: pl.DataFrame) -> pl.DataFrame:
    """Join :func:`file_summary` onto PR rows; a PR without stored file rows gets zero counts."""
    joined = frame.join(summary, on=["repo", "pr_number"], how="left")
    return joined.with_columns(
        pl.col("n_files_stored", "n_code_files", "n_test_files", "context_chars", "n_context_files").fill_null(0),
        pl.col(*_FLAGS).fill_null(False),
        pl.col("other_kinds", "languages", "paths").fill_null([]),
    )


def split_patches(frame: pl.DataFrame) -> pl.DataFrame:
    """Stage 5: cut each PR's ``patch`` into its code part (``oracle_patch``) and test part (``test_patch``).

    Sections are classified by the path they touch, read from their headers as git writes them, quoted names
    included (:func:`swerl_core.diff_paths.section_paths`; the new path of a rename), by
    :func:`swerl_core.file_kinds.file_kind_expr`; sections of docs, lock, generated, vendored and other files
    belong to neither part. ``patch_paths`` lists every section's path, sorted (null for one not readable), for
    :func:`code_only_reason` to compare with the PR's file rows.
    """
    # One row per file section: a NUL marks where each `diff --git` line starts, then split and explode.
    sections = (
        frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), pl.col("patch").fill_null(""))
        .with_columns(
            pl.col("patch").str.replace_all("\ndiff --git ", "\n\x00diff --git ", literal=True).str.split("\x00")
        )
        .explode("patch")
        .filter(pl.col("patch") != "")
        .with_columns(_path=pl.col("patch").map_batches(_section_new_paths, return_dtype=pl.String))
        .with_columns(_kind=file_kind_expr(pl.col("_path")))
        .group_by("_row")
        .agg(
            oracle_patch=pl.col("patch").filter(pl.col("_kind") == CODE).str.join(""),
            test_patch=pl.col("patch").filter(pl.col("_kind") == TEST).str.join(""),
            patch_paths=pl.col("_path").sort(),
        )
    )
    out = frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    out = out.join(sections, on="_row", how="left").drop("_row")
    return out.with_columns(
        pl.col("oracle_patch", "test_patch").fill_null(""),
        pl.col("patch_paths").fill_null([]),
    ).with_columns(
        code_changed_lines=changed_lines_expr(pl.col("oracle_patch")),
        version_lines=version_lines_expr(pl.col("oracle_patch")),
    )


def _section_new_paths(sections: pl.Series) -> pl.Series:
    paths = [section_paths(text) for text in sections.to_list()]
    return pl.Series(sections.name, [None if p is None else p[1] for p in paths], dtype=pl.String)


def _per_unique(column: pl.Expr, predicate: Callable[[str], bool]) -> pl.Expr:
    """``predicate`` over a column of paths, evaluated once per distinct path (many PRs touch the same files)."""

    def each(series: pl.Series) -> pl.Series:
        values = series.drop_nulls().unique().to_list()
        verdicts = dict(zip(values, map(predicate, values), strict=True))
        return series.replace_strict(verdicts, default=None, return_dtype=pl.Boolean)

    return column.map_batches(each, return_dtype=pl.Boolean)


UNSAFE_PATH = "unsafe_path"
"""Stage 3's reason for a PR that touches a path no work tree file may have (``..``, absolute, inside ``.git``,
control characters…; :func:`swerl_core.paths.is_work_tree_path`): git can record one, but applying an edit refuses
it, so a snapshot must never teach or ask for it."""
PATCH_FILES_DISAGREE = "patch_disagrees_with_files"
"""Stage 3's reason for a PR whose patch sections do not name exactly its changed files: the oracle patch and the
oracle contents would describe different changes."""


def code_only_reason() -> pl.Expr:
    """Stage 3: safe paths that the patch and the file rows agree on, at least one non-test source file changed,
    readable as text, and more than a version bump."""
    only = pl.col("other_kinds")
    return (
        pl.when((pl.col("n_files") > 0) & (pl.col("n_files_stored") == 0))
        .then(pl.lit("files_missing_from_store"))
        .when(pl.col("unsafe_path"))
        .then(pl.lit(UNSAFE_PATH))
        .when(pl.col("patch_paths") != pl.col("paths"))
        .then(pl.lit(PATCH_FILES_DISAGREE))
        .when((pl.col("n_code_files") == 0) & (pl.col("n_test_files") > 0) & (only.list.len() == 0))
        .then(pl.lit("tests_only"))
        .when((pl.col("n_code_files") == 0) & (only.list.len() == 1))
        .then(only.list.first() + "_only")
        .when(pl.col("n_code_files") == 0)
        .then(pl.lit("no_code_files"))
        .when(pl.col("code_binary"))
        .then(pl.lit("binary_code_file"))
        .when(pl.col("code_non_utf8"))
        .then(pl.lit("non_utf8_code_file"))
        .when(pl.col("code_too_large"))
        .then(pl.lit("code_file_too_large"))
        .when(pl.col("code_missing"))
        .then(pl.lit("code_file_missing_from_store"))
        .when(pl.col("code_renamed"))
        .then(pl.lit("renamed_code_file"))
        .when(pl.col("oracle_patch") == "")
        .then(pl.lit("empty_code_patch"))
        .when((pl.col("code_changed_lines") > 0) & (pl.col("version_lines") == pl.col("code_changed_lines")))
        .then(pl.lit("version_bump_only"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def size_reason(cfg: CurateConfig) -> pl.Expr:
    """Stage 4: code files within bounds, patch length, issue length, and the estimated prompt tokens.

    The prompt estimate uses ``cfg.chars_per_token`` on lengths alone (:mod:`.tokens`); the exact count,
    when a tokenizer is configured, is taken later on the survivors' texts.
    """
    issue_chars = pl.col("problem_statement").str.strip_chars().str.len_chars()
    reason = (
        pl.when(pl.col("n_code_files") < cfg.min_code_files)
        .then(pl.lit("too_few_code_files"))
        .when(pl.col("n_code_files") > cfg.max_code_files)
        .then(pl.lit("too_many_code_files"))
        .when(pl.col("code_changed_lines") > cfg.max_patch_lines)
        .then(pl.lit("patch_too_long"))
        .when(issue_chars < cfg.min_issue_chars)
        .then(pl.lit("issue_too_short"))
    )
    chars = prompt_chars_expr(issue_chars, pl.col("context_chars"), pl.col("n_context_files"))
    reason = reason.when(estimated_tokens_expr(chars, cfg.chars_per_token) > cfg.max_prompt_tokens).then(
        pl.lit("prompt_over_budget")
    )
    return reason.otherwise(pl.lit(None, dtype=pl.String))
