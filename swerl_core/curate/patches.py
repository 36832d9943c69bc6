"""Unified patches as curation sees them: changed-line counts, version-bump detection,
and the whitespace-insensitive *patch fingerprint* whose hash drives dedup and decontamination.

The fingerprint text is not a patch (it keeps no context, no line numbers, no whitespace): it only
identifies a change; :func:`swerl_core.reward.normalized_patch` is the SWE-RL patch the reward compares.
Every measure is a Polars expression so it runs over millions of patches at once; the plain-Python
forms (:func:`patch_fingerprint_text`, :func:`patch_hash`) evaluate the same expressions, so a benchmark
instance and a pull request are always fingerprinted identically. Never reads git.
"""

from __future__ import annotations

import hashlib

import polars as pl

_HEADER = r"(?m)^(\+\+\+|---) .*$"
_KEPT_LINES = r"(?m)^(diff --git .*|[+-].*)$"
_CHANGED = r"(?m)^[+-]"
_HEADERS = r"(?m)^(\+\+\+|---) "
_VERSION_LINE = r"(?m)^[+-][ \t]*[\"']?(__version__|version|VERSION|Version)[\"']?[ \t]*[:=]"


def patch_fingerprint_text_expr(patch: pl.Expr) -> pl.Expr:
    """The patch reduced to its ``diff --git`` lines and changed lines, with all whitespace removed.

    Hunk headers, context lines and ``index`` lines go: the same change made at another base commit
    (other line numbers, other blob SHAs, re-indented or CRLF) normalizes to the same text.
    """
    return (
        patch.fill_null("")
        .str.replace_all(_HEADER, "")
        .str.extract_all(_KEPT_LINES)
        .list.join("")
        .str.replace_all(r"\s+", "")
    )


def patch_hash_expr(patch: pl.Expr) -> pl.Expr:
    """A stable hex digest of :func:`patch_fingerprint_text_expr` (BLAKE2b-128; null for an empty patch)."""
    return patch_fingerprint_text_expr(patch).map_batches(_digests, return_dtype=pl.String)


def changed_lines_expr(patch: pl.Expr) -> pl.Expr:
    """Added plus deleted lines of a unified patch (file headers not counted)."""
    text = patch.fill_null("")
    return (text.str.count_matches(_CHANGED) - text.str.count_matches(_HEADERS)).cast(pl.Int64)


def version_lines_expr(patch: pl.Expr) -> pl.Expr:
    """Changed lines that only set a version number (``__version__ = …``, ``version = …``, ``"version": …``)."""
    return patch.fill_null("").str.count_matches(_VERSION_LINE).cast(pl.Int64)


def text_hash_expr(text: pl.Expr) -> pl.Expr:
    """A stable digest of ``text`` with all whitespace removed and letters lower-cased (null when empty)."""
    return (
        text.fill_null("").str.replace_all(r"\s+", "").str.to_lowercase().map_batches(_digests, return_dtype=pl.String)
    )


def patch_fingerprint_text(patch: str) -> str:
    """Plain-Python form of :func:`patch_fingerprint_text_expr` (same expression, one row)."""
    return str(pl.select(patch_fingerprint_text_expr(pl.lit(patch, dtype=pl.String))).item())


def patch_hash(patch: str) -> str | None:
    """Plain-Python form of :func:`patch_hash_expr`."""
    return _digest(patch_fingerprint_text(patch))


def _digest(text: str | None) -> str | None:
    if not text:
        return None
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _digests(series: pl.Series) -> pl.Series:
    return pl.Series(series.name, [_digest(text) for text in series.to_list()], dtype=pl.String)
