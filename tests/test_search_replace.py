"""SEARCH/REPLACE edits: parsing, applying, and edits derived from an oracle change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swerl_core.search_replace import Edit, FormatError, apply_edits, derive_edits, parse_edits, render_edits


def test_parse_groups_edits_by_path_in_order() -> None:
    edits = [Edit("b.py", "1", "2"), Edit("a.py", "x", "y"), Edit("b.py", "2", "3")]
    assert parse_edits("prose\n" + render_edits(edits) + "\nmore prose") == {
        "b.py": [edits[0], edits[2]],
        "a.py": [edits[1]],
    }


def test_parse_accepts_any_fence_info_string_and_multiline_halves() -> None:
    text = "```diff  \n### a b.py\n<<<<<<< SEARCH\nl1\nl2\n=======\n\n>>>>>>> REPLACE\n```"
    assert parse_edits(text) == {"a b.py": [Edit("a b.py", "l1\nl2", "")]}


def test_apply_refuses_missing_search_and_no_op() -> None:
    with pytest.raises(FormatError, match="not found"):
        apply_edits({"a": "x\n"}, {"a": [Edit("a", "y", "z")]})
    with pytest.raises(FormatError, match="identical"):
        apply_edits({"a": "x\n"}, {"a": [Edit("a", "x", "x")]})


def test_derived_edits_keep_context_small_and_unique() -> None:
    old = "".join(f"line {i}\n" for i in range(40))
    new = old.replace("line 10\n", "line ten\n").replace("line 30\n", "")
    edits = derive_edits("f", old, new)
    assert len(edits) == 2
    assert edits[0].search == "line 9\nline 10\nline 11"
    assert apply_edits({"f": old}, {"f": edits})["f"] == new


def test_repeated_lines_grow_context_until_unique() -> None:
    old = "x\nx\nx\nx\ny\n"
    new = "x\nx\nx\nz\ny\n"
    edits = derive_edits("f", old, new)
    assert apply_edits({"f": old}, {"f": edits})["f"] == new


line = st.sampled_from(["a", "a", "b", "", " c", "\r", "é", "a\r", "=======", ">>>>>>> REPLACE", "```"])
text = st.lists(line, max_size=15).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(old=text, new=text, context=st.integers(min_value=0, max_value=3))
def test_derived_edits_reproduce_the_new_content_exactly(old: str, new: str, context: int) -> None:
    try:
        edits = derive_edits("f", old, new, context_lines=context)
    except FormatError:
        # Only a change whose blocks would hold a marker line may be refused.
        assert any(marker in old + new for marker in ("=======", ">>>>>>> REPLACE"))
        return
    if old == new:
        assert edits == []
        return
    assert apply_edits({"f": old}, {"f": edits})["f"] == new
    assert parse_edits(render_edits(edits)) == {"f": edits}


def test_change_next_to_a_marker_line_is_refused_not_mangled() -> None:
    old = "a = 0\nx = 1\n=======\nz = 9\n"
    with pytest.raises(FormatError, match="cannot be written as SEARCH/REPLACE"):
        derive_edits("f.py", old, old.replace("x = 1", "x = 2"))
