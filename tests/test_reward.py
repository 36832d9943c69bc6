"""The SWE-RL reward: worked examples, every format error, and its invariants."""

from __future__ import annotations

import difflib
from pathlib import Path

import cydifflib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_git_mirror import QUOTED_NAMES, Upstream

from swerl_core.prompts import oracle_answer
from swerl_core.reward import (
    FAST,
    PYTHON,
    RewardItem,
    batch_rewards,
    content_reward,
    difflib_ratio,
    fast_ratio,
    normalized_patch,
    search_replace_reward,
    unidiff_changes,
    unidiff_reward,
)
from swerl_core.search_replace import Edit, derive_edits, render_edits

CONTEXT = {"pkg/mod.py": "a\nb\nc\n"}
ORACLE = {"pkg/mod.py": "a\nB\nc\n"}


def answer(*edits: Edit, thought: str = "reasoning") -> str:
    return oracle_answer(thought, list(edits))


def test_oracle_edit_scores_exactly_one() -> None:
    result = search_replace_reward(CONTEXT, ORACLE, answer(Edit("pkg/mod.py", "b", "B")))
    assert result.reward == 1.0
    assert result.error is None


def test_one_character_off_scores_26_of_27() -> None:
    # Both normalized patches are "@@ -1,3 +1,3 @@\n a\n-b\n+?\n c" (27 chars) and differ in one
    # character, so SequenceMatcher.ratio() = 2*26 / (27+27).
    result = search_replace_reward(CONTEXT, ORACLE, answer(Edit("pkg/mod.py", "b", "X")))
    assert result.reward == pytest.approx(26 / 27, abs=0)
    assert result.files[0].oracle_change == "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c"


def test_file_changed_only_by_prediction_scores_zero_in_the_mean() -> None:
    result = search_replace_reward(
        CONTEXT, ORACLE, answer(Edit("pkg/mod.py", "b", "B"), Edit("pkg/new.py", "", "x = 1"))
    )
    assert result.reward == 0.5
    assert [(f.path, f.similarity) for f in result.files] == [("pkg/mod.py", 1.0), ("pkg/new.py", 0.0)]


def test_every_occurrence_of_the_search_block_is_replaced() -> None:
    context = {"f.py": "x = 1\ny = 2\nx = 1\n"}
    oracle = {"f.py": "x = 3\ny = 2\nx = 3\n"}
    assert search_replace_reward(context, oracle, answer(Edit("f.py", "x = 1", "x = 3"))).reward == 1.0


def test_search_must_start_at_a_line_start() -> None:
    context = {"f.py": "value = 1\n"}
    result = search_replace_reward(context, context, answer(Edit("f.py", "lue = 1", "lue = 2")))
    assert (result.reward, result.error) == (-1.0, "search block not found in f.py")


def test_edits_of_one_file_apply_in_order() -> None:
    oracle = {"pkg/mod.py": "a\nD\nc\n"}
    edits = (Edit("pkg/mod.py", "b", "B"), Edit("pkg/mod.py", "B", "D"))
    assert search_replace_reward(CONTEXT, oracle, answer(*edits)).reward == 1.0


def test_both_sides_without_change_score_one() -> None:
    assert content_reward(CONTEXT, {}, {}).reward == 1.0
    # A change only in the final newline is no change once split into lines.
    assert content_reward({"f": "a"}, {"f": "a\n"}, {"f": "a"}).reward == 1.0


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ("<solution>x</solution>", "<think> appears 0 times, expected once"),
        ("<think>a</think><think>b</think><solution>x</solution>", "<think> appears 2 times, expected once"),
        ("<think>a<solution>x</solution>", "</think> appears 0 times, expected once"),
        ("<think>a</think>", "<solution> appears 0 times, expected once"),
        ("<think>a</think><solution>x</solution></solution>", "</solution> appears 2 times, expected once"),
        ("<think> \n\t </think><solution>x</solution>", "the thought is empty"),
        ("<think>a</think><solution>just prose, no edits</solution>", "no SEARCH/REPLACE block found"),
    ],
)
def test_malformed_answers_get_minus_one_with_reason(output: str, error: str) -> None:
    result = search_replace_reward(CONTEXT, ORACLE, output)
    assert (result.reward, result.error) == (-1.0, error)
    assert result.is_format_error


def test_identical_search_and_replace_is_a_format_error() -> None:
    result = search_replace_reward(CONTEXT, ORACLE, answer(Edit("pkg/mod.py", "b", "b")))
    assert (result.reward, result.error) == (-1.0, "search and replace blocks are identical in pkg/mod.py")


def test_edit_of_a_file_outside_the_context_needs_an_empty_search() -> None:
    missing = search_replace_reward(CONTEXT, ORACLE, answer(Edit("other.py", "import os", "import sys")))
    assert missing.error == "search block not found in other.py"
    created = search_replace_reward(CONTEXT, ORACLE, answer(Edit("other.py", "", "import sys")))
    assert created.reward == 0.0 and created.error is None


def test_unclosed_fence_is_not_an_edit() -> None:
    block = "```python\n### pkg/mod.py\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n"
    text = f"<think>t</think><solution>{block}</solution>"
    assert search_replace_reward(CONTEXT, ORACLE, text).error == "no SEARCH/REPLACE block found"


def test_crlf_files_keep_their_line_endings() -> None:
    context = {"win.py": "a\r\nb\r\nc\r\n"}
    oracle = {"win.py": "a\r\nB\r\nc\r\n"}
    assert search_replace_reward(context, oracle, answer(Edit("win.py", "b\r", "B\r"))).reward == 1.0
    # Without the \r the search block still matches, but the new line loses its \r: splitlines()
    # then sees the same lines, so the reward is unchanged, as in the reference definition.
    assert search_replace_reward(context, oracle, answer(Edit("win.py", "b\r", "B"))).reward == 1.0


def test_unicode_paths_and_content() -> None:
    context = {"données/π.py": "naïve = '🙂'\n"}
    oracle = {"données/π.py": "naïve = '🎉'\n"}
    assert (
        search_replace_reward(context, oracle, answer(Edit("données/π.py", "naïve = '🙂'", "naïve = '🎉'"))).reward
        == 1.0
    )


def test_very_long_output_is_scored() -> None:
    thought = "consider the cases " * 50_000
    assert search_replace_reward(CONTEXT, ORACLE, answer(Edit("pkg/mod.py", "b", "B"), thought=thought)).reward == 1.0


def test_normalized_patch_drops_headers_and_is_empty_without_change() -> None:
    assert normalized_patch("a\nb\n", "a\nb\n") == ""
    assert normalized_patch("a\n", "b\n") == "@@ -1 +1 @@\n-a\n+b"


RENAME_PATCH = """\
diff --git a/old/name.py b/new/name.py
similarity index 90%
rename from old/name.py
rename to new/name.py
index 1111111..2222222 100644
--- a/old/name.py
+++ b/new/name.py
@@ -1,2 +1,2 @@
 x = 1
-y = 2
+y = 3
"""

BINARY_PATCH = """\
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..3333333
Binary files /dev/null and b/logo.png differ
"""


def test_unidiff_patch_against_itself_scores_one() -> None:
    assert unidiff_reward([RENAME_PATCH], [RENAME_PATCH]).reward == 1.0


def test_unidiff_rename_is_keyed_by_source_path_with_header() -> None:
    result = unidiff_reward([RENAME_PATCH], [])
    assert result.reward == 0.0
    assert result.files[0].path == "old/name.py"
    assert result.files[0].oracle_change.startswith("rename from old/name.py to new/name.py\n@@ -1,2 +1,2 @@")


def test_unidiff_keys_files_by_their_names_when_git_quoted_them(tmp_path: Path) -> None:
    repo = Upstream(tmp_path / "repo")
    repo.write('src/was "quoted".py', "x = 1\n" * 5)
    repo.commit("base")
    for path in QUOTED_NAMES:
        repo.write(path, "y = 1\n")
    repo.git("mv", 'src/was "quoted".py', "src/now plain.py")
    repo.commit("quoted names")
    changes = unidiff_changes(repo.git("diff", "-M", "HEAD~1", "HEAD") + "\n")
    assert sorted(changes) == sorted([*QUOTED_NAMES, 'src/was "quoted".py'])
    assert changes['src/was "quoted".py'] == 'rename from src/was "quoted".py to src/now plain.py'


def test_unidiff_skips_binary_files_and_unparseable_text() -> None:
    assert unidiff_reward([BINARY_PATCH], ["this is not a diff @@ -1 +1 @@"]).reward == 1.0


def test_unidiff_later_patch_overrides_earlier_for_same_file() -> None:
    other = RENAME_PATCH.replace("+y = 3", "+y = 4")
    assert unidiff_reward([RENAME_PATCH], [other, RENAME_PATCH]).reward == 1.0


# ---------------------------------------------------------------------------------------- properties

lines = st.lists(st.sampled_from(["", "x = 1", "    return x", "def f():", "# é", "pass", "\t"]), max_size=12)
texts = lines.map("\n".join)


@settings(max_examples=150, deadline=None)
@given(old=texts, new=texts, other=texts)
def test_reward_is_within_minus_one_and_one(old: str, new: str, other: str) -> None:
    edits = derive_edits("f.py", old, other) or [Edit("f.py", "never there", "x")]
    reward = search_replace_reward({"f.py": old}, {"f.py": new}, answer(*edits)).reward
    assert -1.0 <= reward <= 1.0


@settings(max_examples=200, deadline=None)
@given(old=texts, new=texts)
def test_edits_derived_from_the_oracle_score_one(old: str, new: str) -> None:
    edits = derive_edits("f.py", old, new)
    if not normalized_patch(old, new):
        return  # no change to predict: an answer needs at least one edit
    assert search_replace_reward({"f.py": old}, {"f.py": new}, answer(*edits)).reward == 1.0


@settings(max_examples=200, deadline=None)
@given(a=st.text(alphabet="ab \n", max_size=60), b=st.text(alphabet="ab \n", max_size=60))
def test_c_matcher_equals_pure_difflib_to_the_bit(a: str, b: str) -> None:
    assert fast_ratio(a, b) == difflib_ratio(a, b)
    assert (
        cydifflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        == difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    )


@settings(max_examples=200, deadline=None)
@given(old=texts, new=texts)
def test_c_line_diff_equals_pure_difflib_line_diff(old: str, new: str) -> None:
    assert normalized_patch(old, new, FAST) == normalized_patch(old, new, PYTHON)


@settings(max_examples=100, deadline=None)
@given(old=texts, new=texts, other=texts)
def test_fast_reward_equals_pure_difflib_reward(old: str, new: str, other: str) -> None:
    output = answer(*(derive_edits("f.py", old, other) or [Edit("f.py", "", "z")]))
    fast = search_replace_reward({"f.py": old}, {"f.py": new}, output)
    slow = search_replace_reward({"f.py": old}, {"f.py": new}, output, engine=PYTHON)
    assert fast == slow


@settings(max_examples=60, deadline=None)
@given(old=texts, new=texts, path=st.sampled_from(["a.py", "pkg/b c.py", "données.py"]))
def test_unidiff_of_any_patch_against_itself_scores_one(old: str, new: str, path: str) -> None:
    body = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"))
    patch = f"diff --git a/{path} b/{path}\n{body}"
    expected = 1.0 if body else 0.0  # a file entry without hunks is an empty change: 0, as in the paper's code
    assert unidiff_reward([patch], [patch]).reward == expected


def test_file_entry_without_hunks_is_an_empty_change_scoring_zero() -> None:
    mode_only = "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
    result = unidiff_reward([mode_only], [mode_only])
    assert (result.reward, [f.path for f in result.files]) == (0.0, ["run.sh"])


@settings(max_examples=25, deadline=None)
@given(
    cases=st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=12),
    repeat=st.integers(min_value=1, max_value=3),
)
def test_batch_equals_single_for_any_batch(cases: list[tuple[str, str, str]], repeat: int) -> None:
    items = [
        RewardItem(
            {"f.py": old}, {"f.py": new}, output=answer(*(derive_edits("f.py", old, other) or [Edit("f.py", "", "z")]))
        )
        for old, new, other in cases
    ] * repeat
    assert batch_rewards(items, mode="serial") == [item.score() for item in items]


def test_batch_equals_single_in_order_across_processes() -> None:
    outputs = [
        answer(Edit("pkg/mod.py", "b", "B")),
        answer(Edit("pkg/mod.py", "b", "X")),
        "<think></think><solution></solution>",
        answer(Edit("pkg/mod.py", "b", "Bb"), Edit("pkg/z.py", "", "1")),
    ]
    items = [RewardItem(CONTEXT, ORACLE, output=o) for o in outputs] * 5
    items += [RewardItem(CONTEXT, ORACLE, pred_new_content={"pkg/mod.py": f"a\n{c}\nc\n"}) for c in "BXYZ"]
    expected = [item.score() for item in items]
    assert batch_rewards(items, workers=2, mode="processes") == expected
    assert batch_rewards(items, mode="serial") == expected


def test_render_then_parse_round_trips_to_the_same_reward() -> None:
    edit = Edit("pkg/mod.py", "b", "B")
    output = f"<think>x</think><solution>{render_edits([edit], language='')}</solution>"
    assert search_replace_reward(CONTEXT, ORACLE, output).reward == 1.0


def test_item_without_prediction_is_rejected() -> None:
    with pytest.raises(ValueError, match="needs either output or pred_new_content"):
        RewardItem(CONTEXT, ORACLE).score()


def test_ratio_cache_is_bounded_and_keeps_values_exact() -> None:
    from swerl_core import reward

    pairs = [(f"pred {i}\n" * 3, f"oracle {i % 7}\n" * 3) for i in range(reward.RATIO_CACHE_ENTRIES + 50)]
    for pred, oracle in pairs:
        assert fast_ratio(pred, oracle) == difflib_ratio(pred, oracle)
    assert len(reward._RATIO_CACHE) == reward.RATIO_CACHE_ENTRIES
    # a hit returns the very value computed before
    assert fast_ratio(*pairs[-1]) == difflib_ratio(*pairs[-1])


def test_ratio_cache_tells_apart_pairs_with_the_same_concatenation() -> None:
    from swerl_core import reward

    reward._RATIO_CACHE.clear()
    for pred, oracle in [("ab", "ab"), ("a", "bab"), ("aba", "b"), ("", "abab")]:  # all concatenate to "abab"
        assert reward.fast_ratio(pred, oracle) == reward.difflib_ratio(pred, oracle), (pred, oracle)
    assert len(reward._RATIO_CACHE) == 4
