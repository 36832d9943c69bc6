"""FAIL_TO_PASS / PASS_TO_PASS derivation on a real git repository: a bug, its test, its fix, in the sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from execution_world import REPO, pytest_settings

from swerl_core.config import Settings, load_settings
from swerl_core.execution import PullRequestCode, SandboxResult, TestRun, classify, validate_instance
from swerl_core.execution.validation import named_test_files

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
BASE_TESTS = "from calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
NEW_TESTS = """

def test_add():
    assert add(2, 3) == 5


import pytest


@pytest.mark.parametrize("label", ["two words", "it's", 'a "quote"'])
def test_add_labelled(label):
    assert add(1, 0) == 1, label  # right before the fix too
"""
FLAKY_TEST = """

def test_every_other_run():
    from pathlib import Path
    counter = Path(__file__).parent / "runs.txt"
    runs = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(runs))
    assert runs % 2 == 0
"""


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True, check=True)
    return done.stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def diff_of(repo: Path, path: str, content: str) -> str:
    """The patch that would turn ``path`` into ``content`` (left uncommitted and undone)."""
    original = (repo / path).read_text() if (repo / path).exists() else None
    (repo / path).write_text(content)
    git(repo, "add", "-N", path)
    patch = git(repo, "diff", "--", path)
    if original is None:
        git(repo, "rm", "-q", "--cached", path)
        (repo / path).unlink()
    else:
        (repo / path).write_text(original)
    return patch


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository whose base commit has the bug and one passing test."""
    root = tmp_path_factory.mktemp("repo")
    git(root, "init", "-q")
    (root / "calc.py").write_text(BUGGY)
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(BASE_TESTS)
    return root, commit_all(root, "base")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return pytest_settings("test_timeout_s: 60")


def pull(repo: tuple[Path, str], gold: str, tests: str = "") -> PullRequestCode:
    root, base = repo
    return PullRequestCode(REPO, root / ".git", base, gold_patch=gold, test_patch=tests)


@pytest.mark.slow
def test_a_fix_and_its_new_test_give_fail_to_pass_and_pass_to_pass(
    repo: tuple[Path, str], settings: Settings, tmp_path: Path
) -> None:
    root, _ = repo
    tests = diff_of(root, "tests/test_calc.py", BASE_TESTS + NEW_TESTS)
    result = validate_instance(settings, pull(repo, diff_of(root, "calc.py", FIXED), tests), tmp_path)
    assert result.status == "executable", result
    module = "tests/test_calc.py"
    assert result.fail_to_pass == (f"{module}::test_add",)
    assert set(result.pass_to_pass) == {
        f"{module}::test_zero",
        f"{module}::test_add_labelled[two words]",
        f"{module}::test_add_labelled[it's]",
        f'{module}::test_add_labelled[a "quote"]',
    }
    assert list(tmp_path.iterdir()) == [], "the checkouts stayed behind"


@pytest.mark.slow
def test_a_fix_whose_failing_test_already_exists_counts(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "calc.py").write_text(BUGGY)
    (root / "test_calc.py").write_text(BASE_TESTS + "\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    base = commit_all(root, "base with a failing test")
    result = validate_instance(settings, pull((root, base), diff_of(root, "calc.py", FIXED)), tmp_path / "work")
    assert result.status == "executable"
    assert result.fail_to_pass == ("test_calc.py::test_add",)
    assert result.pass_to_pass == ("test_calc.py::test_zero",)


def test_by_name_selection_finds_the_files_named_after_a_changed_module(tmp_path: Path) -> None:
    for path in ("tests/test_calc.py", "tests/test_sub_calc.py", "calc_test.py", "tests/test_calculator.py",
                 "tests/test_other.py", "calc.py", ".git/test_calc.py", "tests/test_init.py"):  # fmt: skip
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    changed = ["pkg/calc.py", "tests/test_other.py", "pkg/__init__.py", "README.md"]
    assert named_test_files(tmp_path, changed) == ["calc_test.py", "tests/test_calc.py", "tests/test_sub_calc.py"]
    assert named_test_files(tmp_path, ["docs/index.md"]) == []


@pytest.mark.slow
def test_by_name_selection_validates_with_the_named_file_only(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "calc.py").write_text(BUGGY)
    (root / "test_calc.py").write_text(BASE_TESTS + "\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    (root / "test_unrelated.py").write_text("def test_broken():\n    assert False\n")
    base = commit_all(root, "base with a failing test and an unrelated broken one")
    config = tmp_path / "settings.yaml"
    config.write_text(f"home: {tmp_path / 'home'}\nexecution:\n  environments:\n"
                      f'    - {{repo: {REPO}, requirements: ["pytest"], test_selection: by_name}}\n')  # fmt: skip
    by_name = load_settings(config, env={})
    result = validate_instance(by_name, pull((root, base), diff_of(root, "calc.py", FIXED)), tmp_path / "work")
    assert (result.status, result.fail_to_pass, result.pass_to_pass) == (
        "executable", ("test_calc.py::test_add",), ("test_calc.py::test_zero",)
    ), result  # fmt: skip
    nothing = validate_instance(by_name, pull((root, base), diff_of(root, "test_unrelated.py", "")), tmp_path / "w2")
    assert nothing.status == "no_failing_test" and "named after" in nothing.reason


@pytest.mark.slow
def test_a_test_that_changes_between_gold_runs_is_dropped_as_flaky(
    repo: tuple[Path, str], settings: Settings, tmp_path: Path
) -> None:
    root, _ = repo
    tests = diff_of(root, "tests/test_calc.py", BASE_TESTS + NEW_TESTS + FLAKY_TEST)
    result = validate_instance(settings, pull(repo, diff_of(root, "calc.py", FIXED), tests), tmp_path)
    flaky = "tests/test_calc.py::test_every_other_run"
    assert result.flaky == (flaky,)
    assert flaky not in result.fail_to_pass and flaky not in result.pass_to_pass
    assert result.fail_to_pass == ("tests/test_calc.py::test_add",)


@pytest.mark.slow
def test_a_gold_patch_that_fixes_nothing_is_not_executable(
    repo: tuple[Path, str], settings: Settings, tmp_path: Path
) -> None:
    root, _ = repo
    tests = diff_of(root, "tests/test_calc.py", BASE_TESTS + NEW_TESTS)
    no_op = diff_of(root, "calc.py", "# a comment\n" + BUGGY)
    result = validate_instance(settings, pull(repo, no_op, tests), tmp_path)
    assert result.status == "gold_fails" and not result.executable
    assert result.fail_to_pass == ()


@pytest.mark.slow
def test_a_gold_patch_that_does_not_apply_says_so(repo: tuple[Path, str], settings: Settings, tmp_path: Path) -> None:
    root, _ = repo
    stale = diff_of(root, "calc.py", FIXED).replace("return a - b", "return a * b")
    result = validate_instance(settings, pull(repo, stale), tmp_path)
    assert result.status == "patch_failed"
    assert "gold patch does not apply" in result.reason


@pytest.mark.slow
def test_a_base_commit_missing_from_the_mirror_is_a_failed_checkout(
    repo: tuple[Path, str], settings: Settings, tmp_path: Path
) -> None:
    root, _ = repo
    missing = PullRequestCode(REPO, root / ".git", "0" * 40, gold_patch="")
    result = validate_instance(settings, missing, tmp_path)
    assert result.status == "checkout_failed" and not result.executable
    assert result.reason


def test_a_repository_without_an_environment_is_not_run(repo: tuple[Path, str], tmp_path: Path) -> None:
    result = validate_instance(load_settings(env={}, overrides={"home": str(tmp_path)}), pull(repo, ""), tmp_path)
    assert result.status == "no_environment"
    assert "acme/calc declares no execution environment" in result.reason


def test_a_gold_run_stopped_by_a_limit_is_a_failing_gold() -> None:
    stopped = SandboxResult(exit_code=137, stdout=b"", stderr=b"", wall_s=600.0, stopped_by="time")
    before = TestRun(outcomes={"t.py::a": "failed"}, sandbox=stopped)
    after = TestRun(outcomes={"t.py::a": "passed"}, sandbox=stopped)
    verdict = classify(before, [after])
    assert verdict.status == "gold_fails" and "time limit" in verdict.reason


@pytest.mark.slow
def test_an_environment_that_does_not_build_is_recorded_as_install_failed(
    repo: tuple[Path, str], tmp_path: Path
) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"home: {tmp_path / 'home'}\n"
        "execution:\n  environments:\n    - {repo: acme/calc, install: [python, -c, 'raise SystemExit(5)']}\n"
    )
    result = validate_instance(load_settings(config, env={}), pull(repo, ""), tmp_path / "work")
    assert result.status == "install_failed" and "exited 5" in result.reason


def test_tests_a_stopped_run_before_the_gold_patch_never_reached_are_not_fail_to_pass() -> None:
    stopped = SandboxResult(exit_code=137, stdout=b"", stderr=b"", wall_s=600.0, stopped_by="time")
    finished = SandboxResult(exit_code=0, stdout=b"", stderr=b"", wall_s=1.0)
    before = TestRun(outcomes={"t.py::a": "failed"}, sandbox=stopped)
    after = TestRun(outcomes={"t.py::a": "passed", "t.py::b": "passed"}, sandbox=finished)
    verdict = classify(before, [after])
    assert verdict.status == "executable" and verdict.fail_to_pass == ("t.py::a",), verdict
    assert "1 tests left out of FAIL_TO_PASS" in verdict.reason and "time limit" in verdict.reason


def test_a_test_command_that_cannot_run_is_said_so_not_taken_for_no_failing_test() -> None:
    missing = b"prlimit: failed to execute no-such-runner: No such file or directory\n"
    not_found = SandboxResult(exit_code=127, stdout=b"", stderr=missing, wall_s=0.1)
    verdict = classify(TestRun(outcomes={}, sandbox=not_found), [TestRun(outcomes={}, sandbox=not_found)])
    assert verdict.status == "tests_did_not_run", verdict
    assert verdict.reason == f"the test command did not run: {missing.decode().strip()}"
    # A command that ran and found no test is another case: the suite is empty, not the command broken.
    ran = SandboxResult(exit_code=5, stdout=b"no tests ran", stderr=b"", wall_s=0.5)
    assert classify(TestRun(outcomes={}, sandbox=ran), [TestRun(outcomes={}, sandbox=ran)]).status == "no_failing_test"


@pytest.mark.slow
def test_a_declared_runner_that_does_not_exist_validates_as_tests_did_not_run(
    repo: tuple[Path, str], tmp_path: Path
) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"home: {tmp_path / 'home'}\n"
        "execution:\n  environments:\n"
        "    - {repo: acme/calc, requirements: [], test_command: [no-such-runner, '{tests}']}\n"
    )
    result = validate_instance(load_settings(config, env={}), pull(repo, ""), tmp_path / "work")
    assert result.status == "tests_did_not_run" and "no-such-runner" in result.reason, result
