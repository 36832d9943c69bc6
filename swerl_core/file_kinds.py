"""What a repository path is: test, code (and in which language), docs, lock file, generated, vendored, other.

The one path-classification rule of swerl: ingest's ``is_test`` flag and the code/test split of the
stored patches (:mod:`swerl_core.git.changes`) and curation's stages (through :func:`file_kind_expr` and
:func:`language_expr`, the same patterns as Polars expressions over a column of paths) all use it, so a
path is never a test in one place and code in another. Tests are recognised by whole path segments and
file-name conventions, never by substring: ``pytest_plugin.py``, ``contest/``, ``latest.py`` and
``Latest.java`` are code. Every rule is a regular expression that Python's ``re`` and Polars' regex engine
read alike. This module is pure: it never reads file contents, git or the store (Polars loads only when
an expression is built).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

TEST, CODE, DOCS, LOCK, GENERATED, VENDORED, OTHER = "test", "code", "docs", "lock", "generated", "vendored", "other"

# Directory segments and file names that mark tests (SWE-bench / SWE-rebench conventions, several ecosystems).
# JVM/.NET test classes are recognised by their case-sensitive suffix (FooTest, FooTests, FooIT), so
# Latest.java or Contest.kt are code.
TEST_PATTERN = (
    r"(?i:(^|/)(tests?|testing|e2e|__tests__|__mocks__|specs?|testdata|test_data|__snapshots__)/)"
    r"|(?i:(^|/)(conftest\.py|tests?\.py|test_[^/]+|[^/]+_tests?\.[a-z0-9]+|[^/]+_spec\.rb))$"
    r"|(?i:\.(test|spec)\.[cm]?[jt]sx?)$"
    r"|(^|/)[^/]*(Test|Tests|IT)\.(java|kt|scala|cs|groovy)$"
)
LOCK_PATTERN = (
    r"(^|/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|Pipfile\.lock|uv\.lock"
    r"|pdm\.lock|Cargo\.lock|go\.sum|Gemfile\.lock|composer\.lock|mix\.lock|Podfile\.lock|flake\.lock"
    r"|packages\.lock\.json|gradle\.lockfile|requirements[^/]*\.txt)$"
)
VENDORED_PATTERN = r"(?i:(^|/)(vendor|vendored|_vendor|third_party|third-party|thirdparty|node_modules|extern)/)"
GENERATED_PATTERN = (
    r"(?i:(^|/)(generated|__generated__|dist|build|gen)/)"
    r"|(_pb2(_grpc)?\.pyi?|\.pb\.go|\.pb\.(cc|h)|\.min\.(js|css)|[._]generated\.[A-Za-z0-9]+|\.g\.dart"
    r"|\.designer\.cs|_string\.go)$"
)
DOCS_PATTERN = r"(?i:(^|/)(docs?|documentation|site)/)|(?i:\.(md|markdown|rst|txt|adoc|asciidoc|rdoc))$"
EXTENSION_PATTERN = r"\.([A-Za-z0-9]+)$"

# Programming-language source files by extension (configuration, markup and data formats are not code).
LANGUAGES: dict[str, str] = {
    "py": "Python", "pyi": "Python", "pyx": "Cython",
    "js": "JavaScript", "mjs": "JavaScript", "cjs": "JavaScript", "jsx": "JavaScript",
    "ts": "TypeScript", "tsx": "TypeScript", "mts": "TypeScript", "cts": "TypeScript",
    "go": "Go", "rs": "Rust", "java": "Java", "kt": "Kotlin", "kts": "Kotlin", "scala": "Scala",
    "c": "C", "h": "C", "cc": "C++", "cpp": "C++", "cxx": "C++", "hpp": "C++", "hh": "C++", "hxx": "C++",
    "cs": "C#", "fs": "F#", "rb": "Ruby", "php": "PHP", "swift": "Swift", "m": "Objective-C", "mm": "Objective-C",
    "dart": "Dart", "lua": "Lua", "pl": "Perl", "pm": "Perl", "r": "R", "jl": "Julia", "ex": "Elixir",
    "exs": "Elixir", "erl": "Erlang", "hs": "Haskell", "ml": "OCaml", "clj": "Clojure", "groovy": "Groovy",
    "sh": "Shell", "bash": "Shell", "zig": "Zig", "nim": "Nim", "vue": "Vue", "svelte": "Svelte",
}  # fmt: skip

# Checked in this order: the first kind whose pattern matches wins (a test under docs/ is a test).
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    (TEST, TEST_PATTERN),
    (LOCK, LOCK_PATTERN),
    (VENDORED, VENDORED_PATTERN),
    (GENERATED, GENERATED_PATTERN),
    (DOCS, DOCS_PATTERN),
)

_TEST_RE = re.compile(TEST_PATTERN)
_KIND_RES = tuple((kind, re.compile(pattern)) for kind, pattern in KIND_PATTERNS)
_EXTENSION_RE = re.compile(EXTENSION_PATTERN)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test file (by directory segment or file-name convention, never by substring)."""
    return _TEST_RE.search(path) is not None


def language(path: str) -> str | None:
    """The programming language of ``path`` by its extension, or None for anything that is not source code."""
    match = _EXTENSION_RE.search(path)
    return LANGUAGES.get(match.group(1).lower()) if match else None


def file_kind(path: str) -> str:
    """The kind of ``path``: test, lock, vendored, generated, docs, code or other (first rule that matches)."""
    for kind, pattern in _KIND_RES:
        if pattern.search(path):
            return kind
    return CODE if language(path) else OTHER


def language_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`language` (null for non-source files)."""
    import polars as pl

    return (
        path.str.extract(EXTENSION_PATTERN, 1)
        .str.to_lowercase()
        .replace_strict(LANGUAGES, default=None, return_dtype=pl.String)
    )


def file_kind_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`file_kind`, for a column of paths (the curation stages run it on millions of rows)."""
    import polars as pl

    kind, pattern = KIND_PATTERNS[0]
    chain = pl.when(path.str.contains(pattern)).then(pl.lit(kind))
    for kind, pattern in KIND_PATTERNS[1:]:
        chain = chain.when(path.str.contains(pattern)).then(pl.lit(kind))
    return chain.when(language_expr(path).is_not_null()).then(pl.lit(CODE)).otherwise(pl.lit(OTHER))


__all__ = [
    "CODE",
    "DOCS",
    "GENERATED",
    "KIND_PATTERNS",
    "LANGUAGES",
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
