"""Stage 8: keep evaluation benchmarks out of training data.

Drops repositories on the exclude list and every pull request that matches an instance of a
benchmark list (e.g. SWE-bench Verified exported by the user as JSONL or Parquet) by instance id
(``owner__name-N``, the same PR), issue URL (an optional ``issue_url`` column), normalized code-patch
hash (``patch``) or normalized problem-statement hash (``problem_statement``). Reading the list is
the only I/O; matching is pure Polars.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from swerl_core.curate.errors import CurateError
from swerl_core.curate.patches import patch_hash_expr, text_hash_expr

REQUIRED_COLUMNS = ("repo", "instance_id")
MATCH_COLUMNS = ("patch", "problem_statement")


def read_benchmark(path: Path) -> pl.DataFrame:
    """The benchmark instance list with match keys: instance_id, issue_url, patch_hash, problem_hash.

    Raises :class:`CurateError` for an unreadable file or one lacking ``repo``, ``instance_id`` or both of
    ``patch`` / ``problem_statement`` (the message names what is missing).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            raw = pl.read_parquet(path)
        elif path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            raw = pl.read_ndjson(path, infer_schema_length=None)
        else:
            raise CurateError(f"benchmark file {path} must end in .jsonl or .parquet")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CurateError(f"cannot read benchmark file {path}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if not any(c in raw.columns for c in MATCH_COLUMNS):
        missing.append(" or ".join(MATCH_COLUMNS))
    if missing:
        raise CurateError(f"benchmark file {path} lacks column(s): {', '.join(missing)}")
    text = pl.lit(None, dtype=pl.String)
    return raw.select(
        pl.col("repo").cast(pl.String),
        pl.col("instance_id").cast(pl.String),
        (pl.col("issue_url").cast(pl.String) if "issue_url" in raw.columns else text).alias("issue_url"),
        (patch_hash_expr(pl.col("patch").cast(pl.String)) if "patch" in raw.columns else text).alias("patch_hash"),
        (
            text_hash_expr(pl.col("problem_statement").cast(pl.String)) if "problem_statement" in raw.columns else text
        ).alias("problem_hash"),
    )


def instance_id_expr() -> pl.Expr:
    """The SWE-bench style instance id of a PR row: ``owner__name-N``."""
    return pl.concat_str([pl.col("repo").str.replace("/", "__", literal=True), pl.lit("-"), pl.col("pr_number")])


def issue_key_expr(url: pl.Expr) -> pl.Expr:
    """``owner/name#N`` from a GitHub issue URL (``https://github.com/owner/name/issues/N``), else null."""
    parts = url.str.extract_groups(r"github\.com/([^/\s]+/[^/\s]+)/(?:issues|pull)/(\d+)")
    return pl.concat_str([parts.struct.field("1"), pl.lit("#"), parts.struct.field("2")])


def contamination_reason(
    frame: pl.DataFrame, benchmark: pl.DataFrame | None, exclude_repos: tuple[str, ...]
) -> pl.Series:
    """Per PR row: excluded_repo, benchmark_instance, benchmark_issue, benchmark_patch, benchmark_problem, or null.

    Needs columns repo, pr_number, issue_numbers, code_hash and problem_hash.
    """
    reason = pl.when(pl.col("repo").is_in(list(exclude_repos))).then(pl.lit("excluded_repo"))
    df = frame.select("repo", "pr_number", "issue_numbers", "code_hash", "problem_hash")
    if benchmark is not None and benchmark.height:
        issue_keys = benchmark.select(issue_key_expr(pl.col("issue_url"))).to_series().drop_nulls()
        hits = (
            df.with_row_index("_i")
            .explode("issue_numbers")
            .filter(
                pl.concat_str([pl.col("repo"), pl.lit("#"), pl.col("issue_numbers").cast(pl.String)])
                .is_in(issue_keys.implode())
                .fill_null(False)
            )
            .get_column("_i")
            .unique()
        )
        issue_hit = pl.Series(range(df.height), dtype=pl.UInt32).is_in(hits.implode())
        df = df.with_columns(_issue_hit=issue_hit)
        reason = (
            reason.when(instance_id_expr().is_in(benchmark.get_column("instance_id").drop_nulls().implode()))
            .then(pl.lit("benchmark_instance"))
            .when(pl.col("_issue_hit"))
            .then(pl.lit("benchmark_issue"))
            .when(pl.col("code_hash").is_in(benchmark.get_column("patch_hash").drop_nulls().implode()))
            .then(pl.lit("benchmark_patch"))
            .when(pl.col("problem_hash").is_in(benchmark.get_column("problem_hash").drop_nulls().implode()))
            .then(pl.lit("benchmark_problem"))
        )
    return df.select(reason.otherwise(pl.lit(None, dtype=pl.String)).alias("reason")).to_series()
