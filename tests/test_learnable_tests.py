"""The learnable world's generated functions have tests: each fails on its bug and passes on its fix, in process
and, validated the SWE-bench way, in the execution sandbox."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
from execution_world import REPO, pytest_settings

from swerl_core.demo.learnable import FAMILIES, REPOS, BugFix, bug_fixes, build_learnable_world, function_test
from swerl_core.execution import PullRequestCode, validate_instance


def passes(fix: BugFix, source: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether ``fix``'s generated test passes against the module ``source`` (imported under its dotted name)."""
    parts = fix.module.split(".")
    for depth in range(1, len(parts)):
        monkeypatch.setitem(sys.modules, ".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
    module = types.ModuleType(fix.module)
    exec(compile(source, fix.path, "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, fix.module, module)
    namespace: dict[str, object] = {}
    exec(compile(function_test(fix), fix.test_path, "exec"), namespace)
    try:
        namespace[f"test_{fix.function}"]()  # type: ignore[operator]
    except Exception:  # an AssertionError, or the bug's own TypeError
        return False
    return True


@pytest.mark.parametrize("explicit", [False, True])
def test_every_generated_function_has_a_test_that_fails_on_its_bug_and_passes_on_its_fix(
    explicit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixes = [fix for repo in REPOS for fix in bug_fixes(200, seed=1, package=repo.split("/")[1], explicit=explicit)]
    assert {fix.family for fix in fixes} >= (set(FAMILIES) - ({"none_check"} if explicit else set()))
    for fix in fixes:
        assert not passes(fix, fix.before, monkeypatch), f"the test of {fix.path} ({fix.family}) passes on the bug"
        assert passes(fix, fix.after, monkeypatch), f"the test of {fix.path} ({fix.family}) fails on the fix"


def test_test_paths_are_distinct_and_ids_name_the_function() -> None:
    fixes = bug_fixes(300, seed=0)
    assert len({fix.test_path for fix in fixes}) == len(fixes)
    for fix in fixes[:20]:
        assert fix.test_id == f"{fix.test_path}::test_{fix.function}"
        assert function_test(fix).startswith(f"from {fix.module} import {fix.function}\n")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_repository_of_generated_fixes_validates_every_test_as_fail_to_pass(tmp_path: Path) -> None:
    fixes = bug_fixes(2 * len(FAMILIES), seed=3)
    repo = tmp_path / "repo"
    for fix in fixes:
        for path, text in ((fix.path, fix.before), (fix.test_path, function_test(fix))):
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = src\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "bugs and their tests")
    base = git(repo, "rev-parse", "HEAD").strip()
    for fix in fixes:
        (repo / fix.path).write_text(fix.after)
    gold = git(repo, "diff")
    git(repo, "checkout", "-q", "--", ".")
    pull = PullRequestCode(REPO, repo / ".git", base, gold_patch=gold)
    result = validate_instance(pytest_settings(), pull, tmp_path / "work")
    assert result.status == "executable", result
    assert sorted(result.fail_to_pass) == sorted(fix.test_id for fix in fixes)
    assert result.pass_to_pass == () and result.flaky == ()


@pytest.mark.slow
def test_a_pull_request_of_the_learnable_world_validates_with_its_own_test(tmp_path: Path) -> None:
    world = build_learnable_world(tmp_path / "world", seed=0, prs_per_repo=3)
    repo = world.repos["learn/shop"]
    fixes = bug_fixes(3, seed=0, package="shop")
    merged = repo.pulls[4].merge_commit_sha  # the second fix: the first one is merged before it
    assert merged is not None
    base = git(repo.bare_path, "rev-parse", f"{merged}^").strip()
    gold = git(repo.bare_path, "diff", base, merged)
    pull = PullRequestCode(REPO, repo.bare_path, base, gold_patch=gold)
    result = validate_instance(pytest_settings(), pull, tmp_path / "work")
    assert result.status == "executable", result
    assert result.fail_to_pass == (fixes[1].test_id,)
    assert result.pass_to_pass == (fixes[0].test_id,)
