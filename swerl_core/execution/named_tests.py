"""Running named tests of a checkout in its repository's environment, in the sandbox, with each test's outcome.

The test command gets the files of the tests asked for, each one argument (never a shell string); a small pytest
plugin (``pytest_plugin/swerl_test_report.py``, loaded through ``PYTEST_PLUGINS``) keeps exactly the node ids
listed in a file and appends each test's phases under pytest's own node id to a report file in the work tree; both
are read and removed afterwards. A test asked for and absent from the report (unknown id, a module that failed to
import, a run stopped early) is ``missing``; the others still run. The report is written inside the run, by code
that the checkout can change (a ``conftest.py``): a hostile patch can misreport its own tests. What the sandbox
guarantees is containment, not honest outcomes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from swerl_core.config.execution import ExecutionConfig
from swerl_core.execution.environments import Environment
from swerl_core.execution.sandbox import Isolation, Limits, MiB, SandboxResult, run_sandboxed

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "missing"]
PLUGIN_DIR = Path(__file__).resolve().parent / "pytest_plugin"
PLUGIN = "swerl_test_report"


@dataclass(frozen=True)
class TestRun:
    """What running some tests of one checkout gave: each test's outcome, and the sandboxed command's record."""

    __test__ = False  # a library class, not a pytest test class

    outcomes: Mapping[str, Outcome]
    sandbox: SandboxResult
    extra: Mapping[str, Outcome] = field(default_factory=dict)  # tests that ran without being asked for
    report_problem: str = ""  # why the report file was not read ("": it was, or the run wrote none)
    session_status: int | None = None  # pytest's exit status, as the plugin saw the session end; None: it never did

    @property
    def finished(self) -> bool:
        """Whether pytest ran to the end of its session and the command exited with the status the session ended
        with: a run that died (or was cut short by code under test) before that is not a verdict."""
        return self.session_status is not None and self.session_status == self.sandbox.exit_code

    def passed(self, test_id: str) -> bool:
        """Whether ``test_id`` ran and passed."""
        return self.outcomes.get(test_id) == "passed"

    @property
    def all_passed(self) -> bool:
        """Whether every test asked for passed."""
        return all(outcome == "passed" for outcome in self.outcomes.values())

    @property
    def stopped_by(self) -> str | None:
        """The sandbox limit that stopped the run (``time``, ``output``, ``disk``), if one did."""
        return self.sandbox.stopped_by


def limits_for_tests(config: ExecutionConfig) -> Limits:
    """The sandbox limits of one test run under ``config``."""
    return Limits(
        wall_s=config.test_timeout_s,
        memory_bytes=config.memory_mb * MiB,
        output_bytes=config.output_mb * MiB,
        processes=config.processes,
        disk_bytes=config.disk_mb * MiB,
    )


def run_named_tests(
    environment: Environment,
    work_tree: Path,
    test_ids: Sequence[str],
    limits: Limits | None = None,
    hidden: Sequence[Path] = (),
    isolation: Isolation = "bubblewrap",
) -> TestRun:
    """Run ``test_ids`` (pytest node ids, relative to ``work_tree``) with ``environment``'s test command in the
    sandbox, ``hidden`` folders out of its sight (``SWERL_HOME``: the environment stays visible); every id asked
    for gets an outcome (``missing`` when pytest reported nothing for it). ``isolation``: see
    :func:`~.sandbox.run_sandboxed`."""
    files = list(dict.fromkeys(test_id.split("::", 1)[0] for test_id in test_ids))
    files = [f"./{name}" if name.startswith("-") else name for name in files]  # a file, never an option to pytest
    phases, result, problem, session = _run(environment, work_tree, files, list(test_ids), limits, hidden, isolation)
    outcomes = {test_id: phases.pop(test_id, "missing") for test_id in test_ids}
    return TestRun(outcomes, result, extra=phases, report_problem=problem, session_status=session)


def run_test_files(
    environment: Environment,
    work_tree: Path,
    files: Sequence[str],
    limits: Limits | None = None,
    hidden: Sequence[Path] = (),
) -> TestRun:
    """Run every test of ``files`` (paths relative to ``work_tree``; none: the whole suite, as the test command
    collects it) in the sandbox, ``hidden`` folders out of its sight; ``outcomes`` holds each test pytest reported,
    under its node id."""
    phases, result, problem, session = _run(environment, work_tree, list(files), None, limits, hidden)
    return TestRun(outcomes=phases, sandbox=result, report_problem=problem, session_status=session)


def _run(
    environment: Environment,
    work_tree: Path,
    files: list[str],
    wanted: list[str] | None,
    limits: Limits | None,
    hidden: Sequence[Path],
    isolation: Isolation = "bubblewrap",
) -> tuple[dict[str, Outcome], SandboxResult, str, int | None]:
    token = secrets.token_hex(8)
    report = work_tree / f".swerl-test-report-{token}.jsonl"
    listed = work_tree / f".swerl-test-ids-{token}.json"
    env = {
        "PYTEST_PLUGINS": PLUGIN,
        "PYTHONPATH": str(PLUGIN_DIR),
        "SWERL_TEST_REPORT": str(report.resolve()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "VIRTUAL_ENV": str(environment.path / "venv"),
    }
    if wanted is not None:
        listed.write_text(json.dumps(wanted), encoding="utf-8")
        env["SWERL_TEST_IDS"] = str(listed.resolve())
    limits = limits or Limits()
    try:
        result = run_sandboxed(
            environment.declaration.test_argv(files),
            work_tree,
            limits,
            read_only=[*environment.read_only, PLUGIN_DIR],
            hidden=hidden,
            env=env,
            path_prefix=[environment.bin_dir],
            isolation=isolation,
        )
        text, problem = _report_text(report, limits.output_bytes)
        outcomes, session = _parse_report(text)
        return outcomes, result, problem, session
    finally:
        for path in (report, listed):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):  # a folder goes with the work tree
                path.unlink()


def _report_text(report: Path, cap: int) -> tuple[str, str]:
    """The report's text (at most ``cap`` bytes) and why it could not be read ("" when it could, or is absent).
    The sandboxed run chose what lies at ``report``: a symbolic link, a FIFO or a device is never followed, opened
    for a blocking read or read without bound."""
    try:
        fd = os.open(report, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return "", ""
    except OSError as exc:
        return "", f"report unreadable: {exc.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "", "report unreadable: not a regular file"
        chunks: list[bytes] = []
        left = cap
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace"), ""
    finally:
        os.close(fd)


def _parse_report(text: str) -> tuple[dict[str, Outcome], int | None]:
    """Each node id's outcome from its phases (a failed call fails it, a failed setup or teardown is an error), and
    the exit status the session ended with (None when no line says it did)."""
    merged: dict[str, Outcome] = {}
    session: int | None = None
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            node_id, when, outcome = str(entry["id"]), str(entry["when"]), str(entry["outcome"])
            if when == "session":
                session = int(outcome)
                continue
        except (ValueError, KeyError, TypeError, RecursionError):
            continue  # a line cut short by a run that was stopped, or one the code under test wrote
        merged[node_id] = _merge(merged.get(node_id), when, outcome)
    return merged, session


_PHASE_OUTCOMES: dict[str, Outcome] = {
    "passed": "passed",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
}


def _merge(before: Outcome | None, when: str, outcome: str) -> Outcome:
    if before == "failed" or before == "error":
        return before
    if outcome == "failed":
        return "failed" if when == "call" else "error"
    if when == "call" or (when == "setup" and outcome in ("skipped", "xfailed")):
        return _PHASE_OUTCOMES.get(outcome, "error")
    return before or "missing"
