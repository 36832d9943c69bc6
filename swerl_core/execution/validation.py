"""Deriving FAIL_TO_PASS and PASS_TO_PASS for one pull request, the SWE-bench way, in the sandbox.

The tests run are those of the test files the pull request's test changes write (none: the repository's whole
suite, so that a fix whose failing test already exists counts too; or, where the declaration's ``test_selection`` is
``by_name``, the test files named after a module the fix changes). They run once at the base commit with the test
changes applied, then ``gold_runs`` times in one checkout with the gold patch applied as well. FAIL_TO_PASS: tests
that did not pass before and passed in every gold run; PASS_TO_PASS: tests that passed before and in every gold
run. A test whose outcome differs between gold runs is flaky and dropped from both (the runs share one checkout,
so state a test leaves behind shows up as flakiness too). An instance is executable when FAIL_TO_PASS is not
empty; otherwise :class:`Validation.status` says why. Never imports a stage: curation calls it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from swerl_core.config import Settings
from swerl_core.execution.checkouts import patch_paths, prepared_checkout
from swerl_core.execution.environments import ensure_environment
from swerl_core.execution.errors import EnvironmentBuildError, PatchDoesNotApply
from swerl_core.execution.named_tests import TestRun, limits_for_tests, run_test_files
from swerl_core.execution.sandbox import remove_tree
from swerl_core.file_kinds import is_test_path
from swerl_core.git.errors import GitError

Status = Literal[
    "executable",
    "no_environment",
    "install_failed",
    "checkout_failed",
    "patch_failed",
    "no_failing_test",
    "flaky",
    "gold_fails",
    "tests_did_not_run",
    "not_validated",
]
# Exit codes of a command that never ran: found but not executable (126), not found (127).
_COMMAND_DID_NOT_RUN = (126, 127)


@dataclass(frozen=True)
class Validation:
    """One pull request's validation: its status, the two test lists, the flaky tests dropped, and why."""

    status: Status
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    reason: str = ""

    @property
    def executable(self) -> bool:
        """Whether at least one test fails before the gold patch and passes, steadily, after it."""
        return self.status == "executable"


@dataclass(frozen=True)
class PullRequestCode:
    """What validation needs of one pull request: where its history is, its base, and its two patches."""

    repo: str
    mirror: Path
    base_commit: str
    gold_patch: str
    test_patch: str = ""


def validate_instance(
    settings: Settings, pull: PullRequestCode, work_dir: Path, log: Callable[[str], None] | None = None
) -> Validation:
    """Validate ``pull`` under ``settings.execution`` in checkouts made in ``work_dir`` (removed afterwards)."""
    if settings.execution.environment_for(pull.repo) is None:
        return Validation("no_environment", reason=f"{pull.repo} declares no execution environment")
    try:
        environment = ensure_environment(settings, pull.repo, log)
    except EnvironmentBuildError as exc:
        return Validation("install_failed", reason=str(exc))
    files = [path for path in patch_paths(pull.test_patch) if is_test_path(path) and path.endswith(".py")]
    limits = limits_for_tests(settings.execution)
    try:
        before_tree = prepared_checkout(
            pull.mirror, pull.base_commit, work_dir / "before", [("test patch", pull.test_patch)]
        )
        if not files and environment.declaration.test_selection == "by_name":
            files = named_test_files(before_tree, patch_paths(pull.gold_patch))
            if not files:
                return Validation("no_failing_test", reason="no test file is named after a module the fix changes")
        hidden = (settings.home,)  # its mirrors hold every fix, its database every pull request
        before = run_test_files(environment, before_tree, files, limits, hidden)
        _remove(before_tree)
        patches = [("test patch", pull.test_patch), ("gold patch", pull.gold_patch)]
        after_tree = prepared_checkout(pull.mirror, pull.base_commit, work_dir / "after", patches)
        runs = range(settings.execution.gold_runs)
        after = [run_test_files(environment, after_tree, files, limits, hidden) for _ in runs]
    except PatchDoesNotApply as exc:
        return Validation("patch_failed", reason=str(exc))
    except GitError as exc:  # the base commit is not in the mirror (or the mirror is gone)
        return Validation("checkout_failed", reason=str(exc))
    finally:
        _remove(work_dir / "before")
        _remove(work_dir / "after")
    return classify(before, after)


def named_test_files(tree: Path, changed: Sequence[str]) -> list[str]:
    """The test files of ``tree`` named after a Python module of ``changed`` (its stem ``s``: ``test_s.py``,
    ``test_<anything>_s.py`` or ``s_test.py``), relative to ``tree``, sorted; ``.git`` is never searched."""
    stems = {PurePosixPath(path).stem for path in changed if path.endswith(".py") and not is_test_path(path)}
    stems.discard("__init__")
    found = []
    for folder, subfolders, names in os.walk(tree):
        subfolders[:] = [name for name in subfolders if name != ".git"]
        for name in names:
            if name.endswith(".py") and any(_named_after(name, stem) for stem in stems):
                found.append(Path(folder, name).relative_to(tree).as_posix())
    return sorted(found)


def _named_after(name: str, stem: str) -> bool:
    return name in (f"test_{stem}.py", f"{stem}_test.py") or (name.startswith("test_") and name.endswith(f"_{stem}.py"))


def _remove(tree: Path) -> None:
    with contextlib.suppress(OSError):  # a tree that stays is scratch space, not a wrong validation
        remove_tree(tree)


def classify(before: TestRun, after: list[TestRun]) -> Validation:
    """FAIL_TO_PASS, PASS_TO_PASS and the status from one run before the gold patch and the runs after it."""
    stopped = next((run for run in after if run.stopped_by is not None), None)
    if stopped is not None:
        return Validation(
            "gold_fails", reason=f"a run with the gold patch was stopped by its {stopped.stopped_by} limit"
        )
    tests = sorted(set().union(*(run.outcomes for run in after)))
    flaky = tuple(test for test in tests if len({run.outcomes.get(test, "missing") for run in after}) > 1)
    steady = {test: after[0].outcomes.get(test, "missing") for test in tests if test not in flaky}
    # A before-run stopped by a limit never got to some tests: their silence says nothing about failing.
    unheard = {t for t in steady if before.stopped_by is not None and before.outcomes.get(t, "missing") == "missing"}
    fail_to_pass = tuple(
        t for t, o in steady.items() if o == "passed" and before.outcomes.get(t) != "passed" and t not in unheard
    )
    pass_to_pass = tuple(t for t, o in steady.items() if o == "passed" and before.outcomes.get(t) == "passed")
    left_out = sum(1 for t in unheard if steady[t] == "passed")
    note = (
        f"{left_out} tests left out of FAIL_TO_PASS: the run before the gold patch was stopped by its "
        f"{before.stopped_by} limit before they reported"
        if left_out
        else ""
    )
    if fail_to_pass:
        return Validation("executable", fail_to_pass, pass_to_pass, flaky, note)
    if note:
        return Validation("no_failing_test", (), pass_to_pass, flaky, note)
    if flaky:
        return Validation("flaky", (), pass_to_pass, flaky, f"{len(flaky)} tests change outcome between gold runs")
    failing = [t for t, o in steady.items() if o in ("failed", "error")]
    if failing:
        return Validation("gold_fails", (), pass_to_pass, (), f"{len(failing)} tests fail with the gold patch")
    if not tests:
        ran = after[0] if after else before
        if ran.sandbox.exit_code in _COMMAND_DID_NOT_RUN or ran.report_problem:
            said = ran.report_problem or _last_line(ran.sandbox.stderr) or f"exit code {ran.sandbox.exit_code}"
            return Validation("tests_did_not_run", reason=f"the test command did not run: {said}")
        return Validation("no_failing_test", reason="the gold runs reported no test")
    return Validation("no_failing_test", (), pass_to_pass, (), "no test fails before the gold patch")


def _last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else ""
