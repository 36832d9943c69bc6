"""Unit tests of the curation stages on small Polars frames (no database, no git, no network)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from swerl_core.config import ConfigError, load_settings
from swerl_core.config.curate import CurateConfig
from swerl_core.curate import CurateError
from swerl_core.curate.bm25 import rank, tokenize
from swerl_core.curate.decontaminate import contamination_reason, read_benchmark
from swerl_core.curate.dedup import dedup_reason
from swerl_core.curate.filters import (
    apply_stage,
    bot_reason,
    code_only_reason,
    file_summary,
    linked_issue_reason,
    size_reason,
    split_patches,
    with_file_summary,
)
from swerl_core.curate.funnel import FunnelCounter, render_funnel
from swerl_core.curate.patches import patch_fingerprint_text, patch_hash, patch_hash_expr
from swerl_core.curate.split import heldout_mask, leak_reason
from swerl_core.file_kinds import file_kind, file_kind_expr, is_test_path, language

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def diff(path: str, minus: str = "x = 1", plus: str = "x = 2") -> str:
    return (
        f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,2 +1,2 @@\n context\n-{minus}\n+{plus}\n"
    )


def reasons(frame: pl.DataFrame, expr: pl.Expr) -> list[str | None]:
    return frame.with_columns(expr.alias("_r")).get_column("_r").to_list()


# -- file kinds (stage 5's rule) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["tests/test_x.py", "pkg/tests/util.py", "src/testing/h.py", "e2e/login.js", "web/__tests__/a.js",
     "conftest.py", "a/b_test.go", "test_things.py", "ui/btn.spec.tsx", "src/FooTest.java"],
)  # fmt: skip
def test_test_files_are_recognised_by_segment_and_name(path: str) -> None:
    assert is_test_path(path), f"{path} should be a test file"


@pytest.mark.parametrize("path", ["pytest_plugin.py", "contest/solve.py", "src/latest.py", "src/Latest.java",
                                  "attestation/sign.go", "src/testify.py"])  # fmt: skip
def test_substrings_of_test_do_not_make_a_test_file(path: str) -> None:
    assert not is_test_path(path), f"{path} is code, not a test"
    assert file_kind(path) == "code"


def test_polars_and_python_file_kinds_agree() -> None:
    paths = ["README.md", "docs/conf.py", "poetry.lock", "vendor/x.go", "api_pb2.py", "logo.png", "src/a.rs",
             "tests/a.rs", "setup.cfg", "dist/app.js", "requirements.txt"]  # fmt: skip
    got = pl.DataFrame({"p": paths}).select(file_kind_expr(pl.col("p"))).to_series().to_list()
    assert got == [file_kind(p) for p in paths]
    assert got == ["docs", "docs", "lock", "vendored", "generated", "other", "code", "test", "other", "generated",
                   "lock"]  # fmt: skip
    assert language("src/a.rs") == "Rust" and language("setup.cfg") is None


# -- patches ------------------------------------------------------------------------------------


def test_normalized_patch_hash_ignores_whitespace_line_endings_and_line_numbers() -> None:
    a = diff("src/a.py", "x = 1", "x = 2")
    b = a.replace("@@ -1,2 +1,2 @@", "@@ -40,2 +41,2 @@").replace("index 1111111..2222222", "index 3333333..4444444")
    c = a.replace("\n", "\r\n").replace("+x = 2", "+x  =  2")
    assert patch_hash(a) == patch_hash(b) == patch_hash(c)
    assert patch_hash(a) != patch_hash(diff("src/a.py", "x = 1", "x = 3"))
    assert patch_hash("") is None


def test_patch_fingerprint_text_keeps_only_file_and_changed_lines_without_whitespace() -> None:
    import swerl_core.curate.patches as patches

    assert patch_fingerprint_text(diff("src/a.py")) == "diff--gita/src/a.pyb/src/a.py-x=1+x=2"
    assert not hasattr(patches, "normalized_patch"), "the dedup fingerprint must not share the reward's name"


def test_split_patches_names_a_deleted_files_section_by_its_path() -> None:
    deleted = (
        "diff --git a/tests/test_old.py b/tests/test_old.py\ndeleted file mode 100644\n"
        "--- a/tests/test_old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    out = split_patches(pl.DataFrame({"patch": [diff("src/a.py") + deleted]}))
    assert (out["oracle_patch"][0], out["test_patch"][0]) == (diff("src/a.py"), deleted)


def test_split_puts_code_in_oracle_and_tests_in_test_patch_and_drops_docs() -> None:
    frame = pl.DataFrame({"patch": [diff("src/contest.py") + diff("tests/test_a.py") + diff("README.md"), ""]})
    out = split_patches(frame)
    assert out["oracle_patch"][0] == diff("src/contest.py")
    assert out["test_patch"][0] == diff("tests/test_a.py")
    assert out["code_changed_lines"].to_list() == [2, 0]
    assert out["oracle_patch"][1] == "" and out["test_patch"][1] == ""


# -- stages 1-4 ----------------------------------------------------------------------------------


def test_linked_issue_stage_names_why_a_pr_has_no_issue() -> None:
    frame = pl.DataFrame({
        "issue_numbers": [[3], [], [], [], [], [], [4]],
        "issues_missing": [0, 1, 0, 0, 0, 0, 0],
        "issues_gone": [0, 0, 1, 0, 0, 0, 0],
        "issues_elsewhere": [0, 0, 0, 1, 0, 1, 0],
        "links_missing_source": [None, None, None, None, None, "graphql", "graphql"],
    }, schema_overrides={"issue_numbers": pl.List(pl.Int64)})  # fmt: skip
    got = reasons(frame, linked_issue_reason(CurateConfig()))
    assert got == [None, "linked_issue_not_stored", "linked_issue_deleted_or_transferred", "issue_in_other_repo",
                   "no_linked_issue", "links_incomplete_without_graphql", None]  # fmt: skip
    assert reasons(frame, linked_issue_reason(CurateConfig(require_linked_issue=False))) == [None] * 7


def test_bots_are_dropped_by_type_login_and_keyword_but_not_by_substring() -> None:
    frame = pl.DataFrame({
        "author_login": ["dependabot[bot]", "ci-bot", "alice", "alice", "bob", None],
        "author_type": ["Bot", "Bot", "User", "User", "User", None],
        "author_is_bot": [True, False, False, False, False, False],
        "title": ["Bump x", "Sync", "Bump lodash to 4.17.21", "Fix bumpers in physics", "Fix crash", "Fix"],
        "body": ["", "", "", "", "Renovate config left as is", None],
    })  # fmt: skip
    frame = frame.with_columns(pl.col("body").fill_null(""))
    got = reasons(frame, bot_reason(CurateConfig()))
    assert got == ["bot_author", "bot_author", "bot_keyword", None, "bot_keyword", None]
    assert reasons(frame, bot_reason(CurateConfig(bot_keywords=())))[2:] == [None] * 4


def files_frame(rows: list[tuple[int, str, str]], **flags: list[bool]) -> pl.DataFrame:
    n = len(rows)
    data = {
        "repo": ["o/r"] * n,
        "pr_number": [r[0] for r in rows],
        "path": [r[1] for r in rows],
        "old_path": [None] * n,
        "status": [r[2] for r in rows],
        "is_binary": [False] * n,
        "old_blob_sha": ["a" * 40] * n,
        "new_blob_sha": ["b" * 40] * n,
        "blob_binary": [False] * n,
        "invalid_utf8": [False] * n,
        "too_large": [False] * n,
        "old_readable": [True] * n,
        "new_readable": [True] * n,
        "old_chars": [100] * n,
    }
    data.update(flags)
    return pl.DataFrame(data, schema_overrides={"old_path": pl.String})


def prs_frame(patches: dict[int, str], n_files: dict[int, int] | None = None) -> pl.DataFrame:
    numbers = sorted(patches)
    return pl.DataFrame({
        "repo": ["o/r"] * len(numbers),
        "pr_number": numbers,
        "n_files": [(n_files or {}).get(n, 1) for n in numbers],
        "patch": [patches[n] for n in numbers],
        "problem_statement": ["A real problem statement"] * len(numbers),
    })  # fmt: skip


def test_code_only_stage_names_docs_lock_tests_version_bumps_and_vanished_files() -> None:
    files = files_frame([
        (1, "src/a.py", "M"), (1, "tests/test_a.py", "M"),
        (2, "README.md", "M"), (2, "docs/guide.rst", "M"),
        (3, "poetry.lock", "M"),
        (4, "tests/test_a.py", "M"),
        (5, "src/pkg/__init__.py", "M"), (5, "pyproject.toml", "M"),
        (7, "src/enc.py", "M"), (8, "src/gone.py", "M"), (9, "src/new.py", "R"),
    ], invalid_utf8=[False] * 8 + [True, False, False],
       old_readable=[True] * 9 + [False, True])  # fmt: skip
    bump = diff("src/pkg/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.2.0"')
    patches = {1: diff("src/a.py") + diff("tests/test_a.py"), 2: diff("README.md") + diff("docs/guide.rst"),
               3: diff("poetry.lock"),
               4: diff("tests/test_a.py"), 5: bump + diff("pyproject.toml"), 6: diff("src/x.py"),
               7: diff("src/enc.py"), 8: diff("src/gone.py"), 9: diff("src/new.py")}  # fmt: skip
    frame = split_patches(with_file_summary(prs_frame(patches), file_summary(files)))
    got = dict(zip(frame["pr_number"], reasons(frame, code_only_reason()), strict=True))
    assert got == {1: None, 2: "docs_only", 3: "lock_only", 4: "tests_only", 5: "version_bump_only",
                   6: "files_missing_from_store", 7: "non_utf8_code_file", 8: "code_file_missing_from_store",
                   9: "renamed_code_file"}  # fmt: skip


def test_size_stage_bounds_files_patch_issue_and_prompt() -> None:
    frame = pl.DataFrame({
        "n_code_files": [1, 16, 2, 1, 1],
        "code_changed_lines": [10, 10, 5000, 10, 10],
        "problem_statement": ["Crash on empty input", "Crash on empty input", "Crash on empty input", "  short  ",
                              "x" * 1_000_000],
        "context_chars": [1000] * 5,
        "n_context_files": [1] * 5,
    })  # fmt: skip
    got = reasons(frame, size_reason(CurateConfig()))
    assert got == [None, "too_many_code_files", "patch_too_long", "issue_too_short", "prompt_over_budget"]


def test_prompt_estimate_counts_context_file_contents() -> None:
    frame = pl.DataFrame({"n_code_files": [1], "code_changed_lines": [1], "problem_statement": ["A crash in parse"],
                          "context_chars": [4 * 20_000], "n_context_files": [1]})  # fmt: skip
    assert reasons(frame, size_reason(CurateConfig())) == ["prompt_over_budget"]
    assert reasons(frame, size_reason(CurateConfig(max_prompt_tokens=32_768))) == [None]


# -- stages 7-9 ----------------------------------------------------------------------------------


def slim(rows: list[dict]) -> pl.DataFrame:
    base = {"repo": "o/r", "updated_at": T0, "issue_numbers": [], "code_hash": None, "problem_hash": None}
    return pl.DataFrame([{**base, **r} for r in rows], schema_overrides={"issue_numbers": pl.List(pl.Int64)})


def test_dedup_keeps_the_earliest_merge_of_a_patch_and_of_an_issue() -> None:
    frame = slim([
        {"pr_number": 1, "merged_at": datetime(2025, 3, 1, tzinfo=UTC), "code_hash": "h1", "issue_numbers": [10]},
        {"pr_number": 2, "merged_at": datetime(2025, 2, 1, tzinfo=UTC), "code_hash": "h1", "issue_numbers": [11]},
        {"pr_number": 3, "merged_at": datetime(2025, 4, 1, tzinfo=UTC), "code_hash": "h3", "issue_numbers": [11]},
        {"pr_number": 4, "merged_at": datetime(2025, 5, 1, tzinfo=UTC), "code_hash": None, "issue_numbers": [12]},
        {"pr_number": 5, "merged_at": datetime(2025, 5, 2, tzinfo=UTC), "code_hash": None, "issue_numbers": [13]},
    ])  # fmt: skip
    assert dedup_reason(frame).to_list() == ["duplicate_patch", None, "issue_fixed_earlier", None, None]


def test_rows_duplicated_with_conflicting_content_keep_the_latest_update() -> None:
    frame = slim([
        {"pr_number": 7, "merged_at": T0, "updated_at": datetime(2025, 1, 2, tzinfo=UTC), "code_hash": "old"},
        {"pr_number": 7, "merged_at": T0, "updated_at": datetime(2025, 1, 9, tzinfo=UTC), "code_hash": "new"},
    ])  # fmt: skip
    assert dedup_reason(frame).to_list() == ["duplicate_row", None]


def test_decontamination_matches_instance_issue_url_patch_and_problem(tmp_path: Path) -> None:
    bench = tmp_path / "verified.jsonl"
    code = diff("src/a.py", "a = 1", "a = 2")
    pl.DataFrame({
        "repo": ["o/r", "o/r", "x/y", "x/y"],
        "instance_id": ["o__r-1", "o__r-999", "x__y-5", "x__y-6"],
        "patch": ["", "", code.replace("\n", "\r\n"), ""],
        "problem_statement": ["", "", "", "Parser\n  crashes on EMPTY input"],
        "issue_url": [None, "https://github.com/o/r/issues/20", None, None],
    }).write_ndjson(bench)  # fmt: skip
    benchmark = read_benchmark(bench)
    frame = slim([
        {"pr_number": 1, "merged_at": T0},
        {"pr_number": 2, "merged_at": T0, "issue_numbers": [20]},
        {"pr_number": 3, "merged_at": T0, "code_hash": patch_hash(code)},
        {"pr_number": 4, "merged_at": T0},
        {"pr_number": 5, "merged_at": T0},
        {"repo": "secret/repo", "pr_number": 6, "merged_at": T0},
    ]).with_columns(
        problem_hash=pl.Series([None, None, None, None, "x", None]).cast(pl.String)
    )  # fmt: skip
    frame = frame.with_columns(
        problem_hash=pl.when(pl.col("pr_number") == 4)
        .then(pl.select(patch_hash_expr(pl.lit(None, pl.String))).item())
        .otherwise(pl.col("problem_hash"))
    )
    from swerl_core.curate.patches import text_hash_expr

    problem = pl.select(text_hash_expr(pl.lit("parser crashes on empty input"))).item()
    frame = frame.with_columns(problem_hash=pl.when(pl.col("pr_number") == 5).then(pl.lit(problem)).otherwise(None))
    got = contamination_reason(frame, benchmark, ("secret/repo",)).to_list()
    assert got == ["benchmark_instance", "benchmark_issue", "benchmark_patch", None, "benchmark_problem",
                   "excluded_repo"]  # fmt: skip


def test_benchmark_list_with_missing_columns_names_them(tmp_path: Path) -> None:
    bench = tmp_path / "bench.parquet"
    pl.DataFrame({"instance_id": ["a__b-1"], "text": ["x"]}).write_parquet(bench)
    with pytest.raises(CurateError, match=r"lacks column\(s\): repo, patch or problem_statement"):
        read_benchmark(bench)


def test_time_split_never_puts_an_issue_in_both_splits() -> None:
    frame = slim([
        {"pr_number": 1, "merged_at": datetime(2025, 1, 5, tzinfo=UTC), "issue_numbers": [1, 2]},
        {"pr_number": 2, "merged_at": datetime(2025, 6, 5, tzinfo=UTC), "issue_numbers": [2]},
        {"pr_number": 3, "merged_at": datetime(2025, 6, 6, tzinfo=UTC), "issue_numbers": [3]},
    ])  # fmt: skip
    heldout = heldout_mask(frame, datetime(2025, 3, 1, tzinfo=UTC))
    assert heldout.to_list() == [False, True, True]
    assert leak_reason(frame, heldout).to_list() == [None, "issue_in_train", None]
    assert heldout_mask(frame, None).to_list() == [False, False, False]


# -- funnel, bm25, config ------------------------------------------------------------------------


def test_apply_stage_counts_drops_by_reason_across_batches() -> None:
    funnel = FunnelCounter()
    frame = pl.DataFrame({"x": [1, 2, 3, 4]})
    reason = pl.when(pl.col("x") % 2 == 0).then(pl.lit("even")).otherwise(pl.lit(None, dtype=pl.String))
    kept = apply_stage(frame, "parity", reason, funnel)
    apply_stage(frame, "parity", reason, funnel)
    assert kept["x"].to_list() == [1, 3]
    (stage,) = funnel.stages()
    assert (stage.entered, stage.kept, stage.dropped) == (8, 4, {"even": 4})
    assert "even 4" in render_funnel(funnel.stages())


def test_bm25_ranks_the_file_that_defines_the_named_function_first() -> None:
    assert tokenize("parseRows HTTPServer snake_case") == ["parse", "rows", "http", "server", "snake", "case"]
    docs = [Counter(tokenize(t)) for t in ("def slugify(text): ...", "def parse_rows(text, sep): ...", "x = 1")]
    assert rank("parse_rows() drops the last row", docs) == [1]


def test_curate_settings_compose_into_settings_and_reject_bad_values() -> None:
    settings = load_settings(env={"SWERL_CURATE__MAX_CODE_FILES": "5"}, overrides={"curate.exclude_repos": "a/b"})
    assert settings.curate.max_code_files == 5 and settings.curate.exclude_repos == ("a/b",)
    with pytest.raises(ConfigError, match="curate.retrieval"):
        load_settings(env={}, overrides={"curate.retrieval": "magic"})
    with pytest.raises(ConfigError, match="curate.max_code_files"):
        CurateConfig(min_code_files=3, max_code_files=2)
