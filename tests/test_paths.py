"""The one rule for relative paths from outside (snapshots, edits, bucket indexes, pod reports) and its resolver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swerl_core.paths import MAX_NAME_BYTES, MAX_PATH_BYTES, is_safe_relative, path_under

HOSTILE = {
    "climbs out through ..": "a/../../x",
    "a lone ..": "..",
    "ends in ..": "a/..",
    "absolute": "/etc/passwd",
    "a Windows drive with a backslash": "C:\\x",
    "a Windows drive with a slash": "C:/x",
    "drive-relative on Windows": "C:x",
    "a Windows share": "\\\\server\\share\\x",
    "a backslash climbing on Windows": "..\\x",
    "a backslash inside a name": "a\\b",
    "NUL": "x\0y",
    "a newline": "a\nb",
    "a carriage return": "a\rb",
    "an escape character": "a\x1bb",
    "DEL": "a\x7fb",
    "a C1 next-line": "a\x85b",
    "a Unicode line separator": "a\u2028b",
    "a lone surrogate": "a\udc80b",
    "a dot component first": "./a",
    "a dot component inside": "a/./b",
    "a lone dot": ".",
    "an empty component": "a//b",
    "a trailing slash": "a/",
    "empty": "",
    "a component over NAME_MAX": "d/" + "x" * (MAX_NAME_BYTES + 1),
    "a component over NAME_MAX in UTF-8 bytes": "é" * (MAX_NAME_BYTES // 2 + 1),
    "over PATH_MAX": "/".join(["x" * 100] * (MAX_PATH_BYTES // 101 + 1)),
}

FINE = {
    "a plain file": "pkg/core.py",
    "a dotfile": ".github/workflows/ci.yml",
    "dots inside names": "a..b/..c/d..",
    "spaces": "docs/My Notes.md",
    "a colon after the first component": "docs/a:b.md",
    "unicode letters": "ünïcödé/日本語/файл.py",
    "an emoji": "assets/🚀.svg",
    "the longest component": "d/" + "x" * MAX_NAME_BYTES,
    "a long path within PATH_MAX": "/".join(["x" * 100] * 40),
}


@pytest.mark.parametrize("path", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_path_is_refused(path: str) -> None:
    assert not is_safe_relative(path), f"{path!r} passed as safe"


@pytest.mark.parametrize("path", FINE.values(), ids=FINE.keys())
def test_an_ordinary_repository_path_is_accepted(path: str) -> None:
    assert is_safe_relative(path), f"{path!r} was refused"


@pytest.mark.parametrize("value", [None, 3, b"pkg/core.py", Path("pkg/core.py")])
def test_anything_but_a_string_is_refused(value: object) -> None:
    assert not is_safe_relative(value)


@given(st.lists(st.sampled_from(["a", "b.py", "..", ".", "", "é", "x\\y", "c:"]), min_size=1, max_size=6))
def test_a_safe_path_never_climbs_above_where_it_starts(parts: list[str]) -> None:
    path = "/".join(parts)
    if is_safe_relative(path):
        assert os.path.normpath(path) == path and not os.path.normpath(path).startswith("..")


def test_a_safe_path_lands_inside_the_root_even_when_nothing_exists_yet(tmp_path: Path) -> None:
    assert path_under(tmp_path, "new/dir/file.py") == tmp_path / "new" / "dir" / "file.py"


def test_a_path_through_a_symbolic_link_is_refused_wherever_the_link_points(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "pkg").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inner").symlink_to(root / "pkg", target_is_directory=True)
    (root / "pkg" / "alias.py").symlink_to(outside / "target.py")
    assert path_under(root, "escape/evil.py") is None
    assert path_under(root, "inner/core.py") is None, "a link inside the tree must be refused too"
    assert path_under(root, "pkg/alias.py") is None
    assert path_under(root, "pkg/core.py") == root / "pkg" / "core.py"


def test_a_root_reached_through_a_link_still_accepts_its_own_files(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real", target_is_directory=True)
    assert path_under(tmp_path / "via", "a.py") == tmp_path / "via" / "a.py"


@pytest.mark.parametrize("path", ["a/../../x", "/etc/passwd", ".", "a/..", "./a"])
def test_the_resolver_refuses_what_the_rule_refuses(tmp_path: Path, path: str) -> None:
    assert path_under(tmp_path, path) is None
