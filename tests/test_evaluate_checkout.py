"""Predicted edits land only in a temporary copy, and paths that escape the tree are refused and counted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from swerl_core.evaluate.backends import Completion
from swerl_core.evaluate.checkout import apply_in_copy
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import summarize
from swerl_core.evaluate.rollout import score
from swerl_core.paths import is_work_tree_path
from swerl_core.prompts import oracle_answer
from swerl_core.search_replace import Edit

BASE = {"pkg/core.py": "def f():\n    return 1\n", "pkg/tail.py": "x = 1"}


def _git_apply(tmp_path: Path, files: dict[str, str], patch: str) -> dict[str, str]:
    root = tmp_path / "applied"
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    proc = subprocess.run(["git", "apply", "-"], cwd=root, input=patch.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_patch_of_the_copy_applies_with_git_apply(tmp_path: Path) -> None:
    new = {"pkg/core.py": "def f():\n    return 2\n", "pkg/tail.py": "x = 2", "pkg/new.py": "y = 3\n"}
    applied = apply_in_copy(BASE, new)
    assert applied.refused == ()
    assert sorted(applied.written) == ["pkg/core.py", "pkg/new.py", "pkg/tail.py"]
    assert _git_apply(tmp_path, BASE, applied.patch) == new


def test_parent_dir_escape_is_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    outside = tmp_path / "victim.py"
    applied = apply_in_copy(BASE, {"../../../../../../" + str(outside).lstrip("/"): "pwned", "pkg/core.py": "ok\n"})
    assert len(applied.refused) == 1 and applied.written == ("pkg/core.py",)
    assert not outside.exists()


def test_absolute_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "abs.py"
    applied = apply_in_copy(BASE, {str(target): "pwned"})
    assert applied.refused == (str(target),) and applied.patch == ""
    assert not target.exists()


def test_edit_through_a_symlink_in_the_checkout_is_refused(tmp_path: Path) -> None:
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    (checkout / "pkg").mkdir(parents=True)
    outside.mkdir()
    (checkout / "pkg" / "core.py").write_text(BASE["pkg/core.py"])
    (checkout / "link").symlink_to(outside, target_is_directory=True)
    (checkout / "pkg" / "alias.py").symlink_to(outside / "target.py")
    applied = apply_in_copy(checkout, {"link/evil.py": "pwned", "pkg/alias.py": "pwned", "pkg/core.py": "ok\n"})
    assert sorted(applied.refused) == ["link/evil.py", "pkg/alias.py"]
    assert list(outside.iterdir()) == []
    assert (checkout / "pkg" / "core.py").read_text() == BASE["pkg/core.py"], "the original checkout was written"


@given(st.lists(st.sampled_from(["a", "b.py", "..", ".", "", ".git", "src"]), min_size=1, max_size=5), st.booleans())
def test_no_path_with_dotdot_git_or_leading_slash_counts_as_safe(parts: list[str], absolute: bool) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    if absolute or ".." in parts or ".git" in parts:
        assert not is_work_tree_path(path)


def test_escaping_edit_is_counted_in_the_metrics_and_never_applied() -> None:
    inst = EvalInstance("o__r-1", "o/r", "bug", dict(BASE), {"pkg/core.py": "def f():\n    return 2\n"})
    escape = oracle_answer("t", [Edit("../evil.py", "", "import os\nos.system('rm -rf /')")])
    good = oracle_answer("t", [Edit("pkg/core.py", "    return 1", "    return 2")])
    results = score([inst], [[Completion(escape, 3), Completion(good, 4)]], reward_workers=1)
    assert results[0].refused_paths == ("../evil.py",) and not results[0].applied and results[0].model_patch == ""
    assert results[1].applied and results[1].reward == 1.0 and "+    return 2" in results[1].model_patch
    metrics = summarize(results, samples_per_instance=2)
    assert metrics.path_escapes == 1 and metrics.apply_rate == 0.5
