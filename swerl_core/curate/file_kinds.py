"""Curation's view of file kinds: the neutral path rules of :mod:`swerl_core.file_kinds` as Polars expressions.

The rules themselves (test, code and language, docs, lock, generated, vendored) live in
:mod:`swerl_core.file_kinds`, shared with ingest, so a path ingest flags as a test is a test here too.
This module only turns the same regular expressions into expressions over a column of paths (the
stages run them on millions of rows) and re-exports the plain-Python forms. It never reads file contents.
"""

from __future__ import annotations

import polars as pl

from swerl_core.file_kinds import (
    CODE,
    DOCS,
    EXTENSION_PATTERN,
    GENERATED,
    KIND_PATTERNS,
    LANGUAGES,
    LOCK,
    OTHER,
    TEST,
    VENDORED,
    file_kind,
    is_test_path,
    language,
)


def language_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`swerl_core.file_kinds.language` (null for non-source files)."""
    return (
        path.str.extract(EXTENSION_PATTERN, 1)
        .str.to_lowercase()
        .replace_strict(LANGUAGES, default=None, return_dtype=pl.String)
    )


def file_kind_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`swerl_core.file_kinds.file_kind`, for a column of paths."""
    kind, pattern = KIND_PATTERNS[0]
    chain = pl.when(path.str.contains(pattern)).then(pl.lit(kind))
    for kind, pattern in KIND_PATTERNS[1:]:
        chain = chain.when(path.str.contains(pattern)).then(pl.lit(kind))
    return chain.when(language_expr(path).is_not_null()).then(pl.lit(CODE)).otherwise(pl.lit(OTHER))


__all__ = [
    "CODE",
    "DOCS",
    "GENERATED",
    "LOCK",
    "OTHER",
    "TEST",
    "VENDORED",
    "file_kind",
    "file_kind_expr",
    "is_test_path",
    "language",
    "language_expr",
]
