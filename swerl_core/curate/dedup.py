"""Stage 7: one training example per change and per issue.

A pull request is dropped when an earlier-merged one has the same normalized code patch (a
whitespace-insensitive hash: cherry-picks, re-submissions, CRLF variants), or fixes one of the same
issues (backports: the earliest merge is the fix, the others repeat it). Rows duplicated under the
same key with conflicting content keep their most recently updated version. Pure Polars.
"""

from __future__ import annotations

import polars as pl

_ORDER = ["merged_at", "repo", "pr_number"]


def latest_rows(frame: pl.DataFrame) -> pl.Series:
    """Whether each row is the newest (by ``updated_at``) of the rows sharing its (repo, pr_number)."""
    ranked = frame.select("repo", "pr_number", "updated_at").with_row_index("_n")
    ranked = ranked.sort(["updated_at", "_n"], descending=[True, False], nulls_last=True)
    first = ranked.select("_n", pl.struct("repo", "pr_number").is_first_distinct().alias("_keep"))
    return first.sort("_n").get_column("_keep")


def dedup_reason(frame: pl.DataFrame) -> pl.Series:
    """Per row: ``duplicate_row``, ``duplicate_patch``, ``issue_fixed_earlier`` or null (kept).

    Needs columns repo, pr_number, updated_at, merged_at, code_hash and issue_numbers. Each rule is
    judged among the rows the previous rules kept.
    """
    df = frame.select("repo", "pr_number", "updated_at", "merged_at", "code_hash", "issue_numbers").with_row_index("_i")
    reason = pl.Series("reason", [None] * df.height, dtype=pl.String)
    newest = latest_rows(df)
    reason = pl.select(pl.when(~newest).then(pl.lit("duplicate_row")).otherwise(reason)).to_series()

    alive = df.filter(reason.is_null()).sort(_ORDER)
    repeated = alive.filter(pl.col("code_hash").is_not_null() & ~pl.col("code_hash").is_first_distinct()).get_column(
        "_i"
    )
    reason = _mark(df, reason, repeated, "duplicate_patch")

    alive = df.filter(reason.is_null())
    winners = (
        alive.explode("issue_numbers")
        .drop_nulls("issue_numbers")
        .sort(_ORDER)
        .group_by("repo", "issue_numbers", maintain_order=True)
        .agg(pl.col("_i").first().alias("_winner"))
    )
    losers = (
        alive.explode("issue_numbers")
        .join(winners, on=["repo", "issue_numbers"], how="inner")
        .filter(pl.col("_winner") != pl.col("_i"))
        .get_column("_i")
        .unique()
    )
    return _mark(df, reason, losers, "issue_fixed_earlier").alias("reason")


def _mark(df: pl.DataFrame, reason: pl.Series, rows: pl.Series, label: str) -> pl.Series:
    hit = df.get_column("_i").is_in(rows.implode())
    return pl.select(pl.when(hit & reason.is_null()).then(pl.lit(label)).otherwise(reason)).to_series()
