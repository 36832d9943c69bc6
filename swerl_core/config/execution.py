"""``execution`` settings: how each repository's code is installed and its tests run, and the sandbox's limits.

A repository without an entry in ``execution.environments`` is never executed (curation records "no environment").
An entry, in the YAML settings file::

    execution:
      environments:
        - repo: acme/textkit
          requirements: ["pytest==8.3.4", "attrs>=23"]   # pip requirement lines, installed once (network allowed)
          install: []                                    # or/and a command run once in the environment folder
          test_command: ["python", "-m", "pytest", "-p", "no:cacheprovider", "{tests}"]

``{tests}`` stands for the test ids, each one argument (never joined into a shell string); without it the ids
follow the command. Composed into :class:`swerl_core.config.Settings` as ``settings.execution``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from swerl_core.config.checks import DAY_S, require, require_integer, require_number
from swerl_core.repo_names import is_repository_name

TESTS = "{tests}"
DEFAULT_TEST_COMMAND = ("python", "-m", "pytest", "-p", "no:cacheprovider", TESTS)


@dataclass(frozen=True)
class RepoEnvironment:
    """One repository's execution environment: a virtual environment built from ``python`` with
    ``requirements`` installed (and ``install`` run), and the command that runs named tests in a checkout."""

    repo: str = ""
    requirements: tuple[str, ...] = ()  # pip requirement lines
    install: tuple[str, ...] = ()  # a command (argument list) run once in the environment folder, after pip
    test_command: tuple[str, ...] = DEFAULT_TEST_COMMAND
    python: str = ""  # the interpreter the environment is made from; "" = the one running swerl
    system_site_packages: bool = False
    # Which tests validate a pull request that changes no test: the whole suite (`all`), or the test files named
    # after a module it changes (`by_name`: test_<stem>.py, test_<anything>_<stem>.py, <stem>_test.py), which keeps
    # a large suite from running four times per pull request.
    test_selection: Literal["all", "by_name"] = "all"

    def __post_init__(self) -> None:
        key = "execution.environments"
        require(is_repository_name(self.repo), f"{key}.repo", f"OWNER/NAME, got {self.repo!r}")
        for line in (*self.requirements, *self.install, *self.test_command, self.python):
            require("\n" not in line and "\x00" not in line, key, f"single-line values, got {line!r}")
        require(bool(self.test_command), f"{key}.test_command", "a non-empty argument list")
        require(
            self.test_selection in ("all", "by_name"),
            f"{key}.test_selection",
            f"all or by_name, got {self.test_selection!r}",
        )
        require(self.test_command.count(TESTS) <= 1, f"{key}.test_command", f"{TESTS} at most once")
        for field, argv in (("test_command", self.test_command), ("install", self.install)):
            # YAML reads `test_command: "python -m pytest {tests}"` as a string, which arrives as one argument:
            # every run would then fail to start and look like a repository without failing tests.
            shell_string = len(argv) == 1 and any(c.isspace() for c in argv[0])
            require(not shell_string, f"{key}.{field}", f"an argument list, not a string, got {''.join(argv[:1])!r}")
            inside = [arg for arg in argv if TESTS in arg and arg != TESTS]
            require(not inside, f"{key}.{field}", f"{TESTS} as an argument of its own, got {inside[:1]!r}")

    @property
    def digest(self) -> str:
        """A short hash of the declaration: an environment is built once per digest, again when it changes."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def test_argv(self, test_ids: tuple[str, ...] | list[str]) -> list[str]:
        """The test command with ``test_ids`` in place of ``{tests}`` (or after it), each one argument."""
        if TESTS not in self.test_command:
            return [*self.test_command, *test_ids]
        at = self.test_command.index(TESTS)
        return [*self.test_command[:at], *test_ids, *self.test_command[at + 1 :]]


@dataclass(frozen=True)
class ExecutionConfig:
    """Which repositories swerl may run, and the limits of each sandboxed build and test run."""

    environments: tuple[RepoEnvironment, ...] = ()
    build_timeout_s: float = 1800.0  # one environment's install
    test_timeout_s: float = 600.0  # one run of a checkout's tests
    memory_mb: int = 4096  # address space of each process
    output_mb: int = 16  # stdout + stderr kept per run
    disk_mb: int = 1024  # growth of a work tree
    processes: int = 256
    gold_runs: int = 3  # runs of the gold patch when validating an instance (flaky tests differ between runs)
    workers: int = 0  # evaluated answers run against their tests at once, each in its own sandbox; 0 = every core

    def __post_init__(self) -> None:
        repos = [entry.repo for entry in self.environments]
        twice = sorted({repo for repo in repos if repos.count(repo) > 1})
        require(not twice, "execution.environments", f"one entry per repository, got {', '.join(twice)} twice")
        require_number("execution.build_timeout_s", self.build_timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        require_number("execution.test_timeout_s", self.test_timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        require_integer("execution.memory_mb", self.memory_mb, 64, 1_048_576)
        require_integer("execution.output_mb", self.output_mb, 1, 65_536)
        require_integer("execution.disk_mb", self.disk_mb, 1, 1_048_576)
        require_integer("execution.processes", self.processes, 8, 65_536)
        require_integer("execution.gold_runs", self.gold_runs, 1, 20)
        require_integer("execution.workers", self.workers, 0, 1024, note="0: every core")

    def environment_for(self, repo: str) -> RepoEnvironment | None:
        """The declared environment of ``repo`` (``OWNER/NAME``), or None when it has none."""
        return next((entry for entry in self.environments if entry.repo.lower() == repo.lower()), None)
