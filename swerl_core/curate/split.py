"""Stage 9: the time split. PRs merged after the cut-off form the held-out split (fresh data the model
cannot have seen), the rest train; a held-out PR that shares a repository+issue with a training PR is
dropped so no issue is ever in both. Pure Polars.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl


def heldout_mask(frame: pl.DataFrame, heldout_after: datetime | None) -> pl.Series:
    """Whether each row (by ``merged_at``) belongs to the held-out split; all False without a cut-off."""
    if heldout_after is None:
        return pl.Series("heldout", [False] * frame.height, dtype=pl.Boolean)
    return frame.select((pl.col("merged_at") > pl.lit(heldout_after)).fill_null(False).alias("heldout")).to_series()


def leak_reason(frame: pl.DataFrame, heldout: pl.Series) -> pl.Series:
    """``issue_in_train`` for held-out rows sharing a (repo, issue) with a training row; null otherwise."""
    df = frame.select("repo", "issue_numbers").with_columns(heldout.alias("_heldout")).with_row_index("_i")
    pairs = df.explode("issue_numbers").drop_nulls("issue_numbers")
    train_issues = pairs.filter(~pl.col("_heldout")).select("repo", "issue_numbers").unique()
    leaked = (
        pairs.filter(pl.col("_heldout"))
        .join(train_issues, on=["repo", "issue_numbers"], how="semi")
        .get_column("_i")
        .unique()
    )
    hit = df.get_column("_i").is_in(leaked.implode())
    return pl.select(pl.when(hit).then(pl.lit("issue_in_train")).otherwise(pl.lit(None, dtype=pl.String))).to_series()
