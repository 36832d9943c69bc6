"""Stage 9: the time split. PRs merged after the cut-off form the held-out split (fresh data the model
cannot have seen), the rest train; a held-out PR that shares a repository+issue with a training PR is
dropped so no issue is ever in both. The cut-off is the later of ``curate.heldout_after`` and the base
model's training cutoff (``curate.base_model_cutoff``): a held-out PR the base model may have read in
pre-training would measure memory, not repair. Every held-out PR is then newer than the cutoff and than
every training row, which :func:`heldout_bound_record` checks and the manifest records. Pure Polars.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from swerl_core.curate import CurateError


def heldout_bound(heldout_after: datetime | None, base_model_cutoff: datetime | None) -> tuple[datetime | None, str]:
    """The time split's cut-off and which bound it is: ``heldout_after``, ``base_model_cutoff`` or ``none``."""
    bounds = ((heldout_after, "heldout_after"), (base_model_cutoff, "base_model_cutoff"))
    given = [(at, kind) for at, kind in bounds if at is not None]
    if not given:
        return None, "none"
    return max(given, key=lambda b: b[0])


def heldout_bound_record(
    train: pl.DataFrame, heldout: pl.DataFrame, heldout_after: datetime | None, base_model_cutoff: datetime | None
) -> dict[str, str | None]:
    """The manifest's ``heldout_bound``: both bounds, the one applied, and the newest training / oldest held-out PR.

    Raises :class:`CurateError` when a held-out PR is not newer than the cut-off and every training row.
    """
    at, applied = heldout_bound(heldout_after, base_model_cutoff)
    newest_train = train.get_column("merged_at").max() if train.height else None
    oldest_heldout = heldout.get_column("merged_at").min() if heldout.height else None
    if oldest_heldout is not None and (
        (at is not None and oldest_heldout <= at) or (newest_train is not None and oldest_heldout <= newest_train)
    ):
        raise CurateError(
            f"held-out PR merged {oldest_heldout} is not newer than the cut-off {at} and every training row "
            f"(newest {newest_train})"
        )

    def iso(value: object) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else None

    return {
        "applied": applied,
        "at": iso(at),
        "heldout_after": iso(heldout_after),
        "base_model_cutoff": iso(base_model_cutoff),
        "newest_train_merged_at": iso(newest_train),
        "oldest_heldout_merged_at": iso(oldest_heldout),
    }


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
