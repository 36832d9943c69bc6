"""Evaluation checkouts expose no history after the base commit: no future commits, refs, tags or packed objects
that contain the fix, while a plain clone of the same mirror does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swerl_core.git import GitError
from swerl_core.git.isolated import future_objects, isolated_checkout

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin"}  # fmt: skip


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str, str]:
    """A bare mirror with a base commit, a later fix commit (tagged, on a branch and a PR ref) packed together."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "base")
    base = _git(work, "rev-parse", "HEAD")
    (work / "calc.py").write_text("def add(a, b):\n    return a + b  # THE FIX\n")
    _git(work, "commit", "-qam", "fix add")
    fix = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "v1.0")
    _git(work, "update-ref", "refs/pull/7/head", fix)
    bare = tmp_path / "mirror.git"
    _git(tmp_path, "clone", "-q", "--mirror", str(work), str(bare))
    _git(bare, "gc", "-q")  # everything in one pack, the fix included
    return bare, base, fix


def test_an_isolated_checkout_holds_only_the_history_up_to_the_base_commit(
    mirror: tuple[Path, str, str], tmp_path: Path
) -> None:
    bare, base, fix = mirror
    dest = isolated_checkout(bare, base, tmp_path / "checkout")
    assert (dest / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert _git(dest, "rev-list", "--all") == base and _git(dest, "tag") == ""
    assert subprocess.run(["git", "cat-file", "-e", fix], cwd=dest, capture_output=True).returncode != 0
    assert future_objects(dest / ".git", base) == [], "objects or refs after the base commit are stored"
    assert _git(bare, "rev-parse", "v1.0") == fix, "the mirror must be left as it was"


def test_a_plain_clone_of_the_mirror_is_caught_leaking_the_fix(mirror: tuple[Path, str, str], tmp_path: Path) -> None:
    bare, base, fix = mirror
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--no-local", str(bare), str(clone))
    _git(clone, "checkout", "-q", "--detach", base)
    leaked = future_objects(clone / ".git", base)
    assert fix in leaked and any(item.startswith("ref ") for item in leaked)


def test_a_base_commit_missing_from_the_mirror_is_an_error(mirror: tuple[Path, str, str], tmp_path: Path) -> None:
    with pytest.raises(GitError, match="fetch failed"):
        isolated_checkout(mirror[0], "0" * 40, tmp_path / "checkout")
