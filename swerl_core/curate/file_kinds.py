"""What a changed file is: test, code (and in which language), docs, lock file, generated, vendored, other.

Tests are recognised by whole path segments and file-name conventions, never by substring:
``pytest_plugin.py``, ``contest/`` and ``latest.py`` are code. Every rule is one regular expression
used both as a Polars expression (the stages, on millions of rows) and in plain Python
(:func:`file_kind`), so the two can never disagree. This module never reads file contents.
"""

from __future__ import annotations

import re

import polars as pl

TEST, CODE, DOCS, LOCK, GENERATED, VENDORED, OTHER = "test", "code", "docs", "lock", "generated", "vendored", "other"

# Directory segments and file names that mark tests (SWE-bench / SWE-rebench conventions, several ecosystems).
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
_EXTENSION = r"\.([A-Za-z0-9]+)$"

_TEST_RE = re.compile(TEST_PATTERN)
_LOCK_RE = re.compile(LOCK_PATTERN)
_VENDORED_RE = re.compile(VENDORED_PATTERN)
_GENERATED_RE = re.compile(GENERATED_PATTERN)
_DOCS_RE = re.compile(DOCS_PATTERN)
_EXTENSION_RE = re.compile(_EXTENSION)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test file (by directory segment or file-name convention, never by substring)."""
    return _TEST_RE.search(path) is not None


def language(path: str) -> str | None:
    """The programming language of ``path`` by its extension, or None for anything that is not source code."""
    match = _EXTENSION_RE.search(path)
    return LANGUAGES.get(match.group(1).lower()) if match else None


def file_kind(path: str) -> str:
    """The kind of ``path``: test, lock, vendored, generated, docs, code or other (first rule that matches)."""
    if _TEST_RE.search(path):
        return TEST
    if _LOCK_RE.search(path):
        return LOCK
    if _VENDORED_RE.search(path):
        return VENDORED
    if _GENERATED_RE.search(path):
        return GENERATED
    if _DOCS_RE.search(path):
        return DOCS
    return CODE if language(path) else OTHER


def language_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`language` (null for non-source files)."""
    return (
        path.str.extract(_EXTENSION, 1)
        .str.to_lowercase()
        .replace_strict(LANGUAGES, default=None, return_dtype=pl.String)
    )


def file_kind_expr(path: pl.Expr) -> pl.Expr:
    """Polars form of :func:`file_kind`, for a column of paths."""
    return (
        pl.when(path.str.contains(TEST_PATTERN))
        .then(pl.lit(TEST))
        .when(path.str.contains(LOCK_PATTERN))
        .then(pl.lit(LOCK))
        .when(path.str.contains(VENDORED_PATTERN))
        .then(pl.lit(VENDORED))
        .when(path.str.contains(GENERATED_PATTERN))
        .then(pl.lit(GENERATED))
        .when(path.str.contains(DOCS_PATTERN))
        .then(pl.lit(DOCS))
        .when(language_expr(path).is_not_null())
        .then(pl.lit(CODE))
        .otherwise(pl.lit(OTHER))
    )
