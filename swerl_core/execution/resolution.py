"""Whether a candidate patch resolves an executable instance: SWE-bench's rule, run in swerl's sandbox.

An executable instance is a repository, a base commit, the test changes of its pull request and the two lists
validation derived (or a SWE-bench record carries): FAIL_TO_PASS and PASS_TO_PASS. The candidate (a model's
answer as a diff, or the gold patch) is applied to an isolated checkout of the base commit; then, as SWE-bench's
harness does, what the candidate changed of the test machinery is undone (:func:`protected_path`: the files the
test changes touch, test files, any ``conftest.py`` and pytest's configuration files go back to the base commit,
such files it added are deleted), the test changes are applied on top, and the two lists run as named tests. So
the tests run are the pull request's, not the candidate's version of them, and a candidate that also edits a test
is judged on its fix. Resolved: every test of both lists passed. Otherwise the reason is the first that holds:
``did_not_apply``, ``timed_out`` (the wall limit), ``crashed`` (another limit, a pytest session that did not run to
its end with the exit status it reported, or a test that reported nothing or errored), ``tests_failed``. Code under
test runs inside pytest's own process, so a candidate written to forge pytest's report could still do so; what this
rule catches is one that ends the run early or hides its tests behind a configuration of its own. Whatever the
candidate does, it is contained by the sandbox and this returns.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swerl_core.config import Settings
from swerl_core.diff_paths import diff_sections, section_paths
from swerl_core.execution.checkouts import apply_patch, prepared_checkout
from swerl_core.execution.environments import ensure_environment
from swerl_core.execution.errors import PatchDoesNotApply
from swerl_core.execution.named_tests import Outcome, TestRun, limits_for_tests, run_named_tests
from swerl_core.execution.sandbox import remove_tree
from swerl_core.file_kinds import is_test_path
from swerl_core.git.command import first_error_line, git_argv, git_env

Reason = Literal["resolved", "did_not_apply", "timed_out", "crashed", "tests_failed"]
NOT_RUN = "not_run"
"""What a candidate gets when the machine could not judge it (no mirror, an environment that does not build, a
cluster that lost its pod): not a :data:`Reason`, and left out of every rate."""
# Every file pytest reads its configuration from (pytest 9 reads pytest.toml and .pytest.toml first).
PYTEST_CONFIG_FILES = frozenset(
    {"pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"}
)


@dataclass(frozen=True)
class ExecutableInstance:
    """What deciding "resolved" needs of one instance."""

    instance_id: str
    repo: str
    base_commit: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...] = ()
    test_patch: str = ""


@dataclass(frozen=True)
class Resolution:
    """Whether a candidate resolved its instance, why not when it did not, and each test's outcome."""

    reason: Reason
    detail: str = ""
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        """Whether every FAIL_TO_PASS and PASS_TO_PASS test passed with the candidate."""
        return self.reason == "resolved"


def swebench_instance(record: Mapping[str, Any]) -> ExecutableInstance:
    """An :class:`ExecutableInstance` from a SWE-bench-format record (``instance_id``, ``repo``, ``base_commit``,
    ``test_patch``, ``FAIL_TO_PASS``, ``PASS_TO_PASS``; the two lists as JSON text, as the datasets hold them,
    or as lists)."""

    def tests(value: Any) -> tuple[str, ...]:
        items = json.loads(value) if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"{record.get('instance_id')}: a test list must be a list of test ids, got {value!r}")
        return tuple(items)

    return ExecutableInstance(
        instance_id=str(record["instance_id"]),
        repo=str(record["repo"]),
        base_commit=str(record["base_commit"]),
        fail_to_pass=tests(record["FAIL_TO_PASS"]),
        pass_to_pass=tests(record.get("PASS_TO_PASS", "[]")),
        test_patch=str(record.get("test_patch") or ""),
    )


def protected_path(path: str, test_patch_paths: frozenset[str] = frozenset()) -> bool:
    """Whether a candidate's change to ``path`` is undone before the tests run: a file the test changes touch, a
    test file, a ``conftest.py`` or a file holding pytest's configuration."""
    name = posixpath.basename(path)
    return path in test_patch_paths or is_test_path(path) or name == "conftest.py" or name in PYTEST_CONFIG_FILES


def _touched_paths(patch: str) -> frozenset[str]:
    """Both sides' paths of every file a unified diff touches."""
    paths: set[str] = set()
    for section in diff_sections(patch):
        paths.update(section_paths(section) or ())
    return frozenset(paths)


def _undo_test_machinery(tree: Path, test_patch_paths: frozenset[str]) -> None:
    """Put every protected path the candidate changed back as the base commit has it; delete those it added.
    Runs before anything of the checkout has executed (its ``.git`` is still swerl's own)."""
    status = _git(tree, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"])
    tracked: list[str] = []
    added: list[str] = []
    for entry in status.split(b"\0"):
        if len(entry) < 4:
            continue
        path = entry[3:].decode("utf-8", "surrogateescape")
        if protected_path(path, test_patch_paths):
            (added if entry[:2] == b"??" else tracked).append(path)
    if tracked:
        _git(tree, ["checkout", "HEAD", "--", *tracked])
    if added:
        _git(tree, ["clean", "-fq", "--", *added])


def _git(tree: Path, args: list[str]) -> bytes:
    argv = git_argv(None, ["--literal-pathspecs", *args])  # a path is a name, never a glob or magic pathspec
    done = subprocess.run(argv, cwd=tree, capture_output=True, env=git_env(), check=False, timeout=300)
    if done.returncode != 0:
        raise PatchDoesNotApply(f"the candidate's test changes cannot be undone: {first_error_line(done.stderr)}")
    return done.stdout


def resolve(
    settings: Settings, instance: ExecutableInstance, mirror: Path, candidate_patch: str, work_dir: Path
) -> Resolution:
    """Apply ``candidate_patch`` and then the instance's test changes to a checkout of its base commit (from
    ``mirror``, in ``work_dir``, removed afterwards) and run its FAIL_TO_PASS and PASS_TO_PASS tests in the
    sandbox, ``SWERL_HOME`` hidden from it (its mirrors hold the fix). Raises :class:`~.errors.ExecutionError`
    when the repository declares no environment or it does not build: the machine's failure, not the candidate's."""
    environment = ensure_environment(settings, instance.repo)
    tree = work_dir / "checkout"
    try:
        prepare_candidate(instance, mirror, candidate_patch, tree)
        run = run_named_tests(environment, tree, instance_tests(instance), limits_for_tests(settings.execution),
                              (settings.home,))  # fmt: skip
    except PatchDoesNotApply as exc:
        return Resolution("did_not_apply", str(exc))
    finally:
        remove_tree(tree)
    return judge(run)


def prepare_candidate(instance: ExecutableInstance, mirror: Path, candidate_patch: str, tree: Path) -> None:
    """Check out the instance's base commit from ``mirror`` at ``tree``, apply ``candidate_patch``, undo what it
    changed of the test machinery and apply the instance's test changes: the tree its tests run in. Raises
    :class:`PatchDoesNotApply` when the candidate (or the test changes on top of it) does not apply."""
    prepared_checkout(mirror, instance.base_commit, tree, [("candidate patch", candidate_patch)])
    _undo_test_machinery(tree, _touched_paths(instance.test_patch))
    apply_patch(tree, instance.test_patch, "test patch")


def instance_tests(instance: ExecutableInstance) -> list[str]:
    """The tests that decide the instance: FAIL_TO_PASS then PASS_TO_PASS, each once."""
    return list(dict.fromkeys((*instance.fail_to_pass, *instance.pass_to_pass)))


def judge(run: TestRun) -> Resolution:
    """The verdict on a candidate from the run of its instance's tests (SWE-bench's rule; see the module docstring)."""
    if run.stopped_by == "time":
        return Resolution("timed_out", "the tests ran past execution.test_timeout_s", run.outcomes)
    if run.stopped_by is not None:
        return Resolution("crashed", f"stopped by the sandbox's {run.stopped_by} limit", run.outcomes)
    if not run.finished:
        return Resolution(
            "crashed",
            f"pytest did not finish its session (exit {run.sandbox.exit_code}, session status "
            f"{run.session_status}): the run died, or code under test ended it",
            run.outcomes,
        )
    broken = [test for test, outcome in run.outcomes.items() if outcome in ("missing", "error")]
    if broken:
        return Resolution("crashed", f"{len(broken)} tests did not run to a verdict, e.g. {broken[0]}", run.outcomes)
    failed = [test for test, outcome in run.outcomes.items() if outcome != "passed"]
    if failed:
        return Resolution("tests_failed", f"{len(failed)} tests did not pass, e.g. {failed[0]}", run.outcomes)
    return Resolution("resolved", "", run.outcomes)
