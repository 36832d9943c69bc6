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

Where the test runs of evaluation happen is ``execution.backend``: ``local`` (bubblewrap on this machine) or
``kubernetes`` (one Job per batch of runs, ``execution.kubernetes``; see ``docs/execution.md``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from swerl_core.config.checks import DAY_S, MONTH_S, require, require_integer, require_number
from swerl_core.k8s.manifests import DNS_LABEL
from swerl_core.repo_names import is_repository_name

TESTS = "{tests}"
_CPU = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")
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
    # The image a Kubernetes test-run pod runs this repository's tests in; "" = execution.kubernetes.image. It must
    # hold the interpreter the environment was made from at the same path (swerl's images do: see docs/execution.md).
    image: str = ""

    def __post_init__(self) -> None:
        key = "execution.environments"
        require(is_repository_name(self.repo), f"{key}.repo", f"OWNER/NAME, got {self.repo!r}")
        for line in (*self.requirements, *self.install, *self.test_command, self.python, self.image):
            require("\n" not in line and "\x00" not in line, key, f"single-line values, got {line!r}")
        require(bool(self.test_command), f"{key}.test_command", "a non-empty argument list")
        require(
            self.test_selection in ("all", "by_name"),
            f"{key}.test_selection",
            f"all or by_name, got {self.test_selection!r}",
        )
        require(self.test_command.count(TESTS) <= 1, f"{key}.test_command", f"{TESTS} at most once")
        for name, argv in (("test_command", self.test_command), ("install", self.install)):
            # YAML reads `test_command: "python -m pytest {tests}"` as a string, which arrives as one argument:
            # every run would then fail to start and look like a repository without failing tests.
            shell_string = len(argv) == 1 and any(c.isspace() for c in argv[0])
            require(not shell_string, f"{key}.{name}", f"an argument list, not a string, got {''.join(argv[:1])!r}")
            inside = [arg for arg in argv if TESTS in arg and arg != TESTS]
            require(not inside, f"{key}.{name}", f"{TESTS} as an argument of its own, got {inside[:1]!r}")

    @property
    def digest(self) -> str:
        """A short hash of the declaration: an environment is built once per digest, again when it changes. The
        image only says where a cluster runs the tests, so it is not part of it."""
        built = {key: value for key, value in asdict(self).items() if key != "image"}
        text = json.dumps(built, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def test_argv(self, test_ids: tuple[str, ...] | list[str]) -> list[str]:
        """The test command with ``test_ids`` in place of ``{tests}`` (or after it), each one argument."""
        if TESTS not in self.test_command:
            return [*self.test_command, *test_ids]
        at = self.test_command.index(TESTS)
        return [*self.test_command[:at], *test_ids, *self.test_command[at + 1 :]]


@dataclass(frozen=True)
class ExecutionKubernetes:
    """Where evaluation's test runs go when ``execution.backend`` is ``kubernetes``: one indexed Job per batch of
    runs, one pod per run, in ``namespace``, the shared ``SWERL_HOME`` volume (``home_claim``) mounted read-only
    by the pod's checkout step. Credentials as for training: a kubeconfig, else the pod's service account."""

    namespace: str = "swerl"
    image: str = "swerl-trainer:0.1.0"  # swerl and git, and the interpreter environments are made from
    home_claim: str = "swerl-home"
    batch_size: int = 64  # runs per Job (its ConfigMap of runs stays under Kubernetes' 1 MiB)
    parallelism: int = 16  # pods of one Job at once
    cpu: str = "1"  # each test pod's CPU request and limit
    kubeconfig: Path | None = None
    context: str | None = None
    poll_s: float = 5.0
    timeout_s: float | None = None  # give up following one Job after this long; None: until it ends

    def __post_init__(self) -> None:
        key = "execution.kubernetes"
        require_integer(f"{key}.batch_size", self.batch_size, 1, 1000)
        require_integer(f"{key}.parallelism", self.parallelism, 1, 10_000)
        require_number(f"{key}.poll_s", self.poll_s, 0, 3600, open_low=True, unit="seconds")
        if self.timeout_s is not None:
            require_number(
                f"{key}.timeout_s", self.timeout_s, 0, MONTH_S, open_low=True, unit="seconds", note="or none"
            )
        require(bool(self.image.strip()) and not any(c.isspace() for c in self.image), f"{key}.image",
                f"an image reference, got {self.image!r}")  # fmt: skip
        for name in ("namespace", "home_claim"):
            value = getattr(self, name)
            require(
                bool(DNS_LABEL.match(value)), f"{key}.{name}", f"a lowercase DNS label (a-z, 0-9, '-'), got {value!r}"
            )
        require(bool(_CPU.match(self.cpu)), f"{key}.cpu", f"a CPU quantity such as 1, 0.5 or 500m, got {self.cpu!r}")


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
    workers: int = 0  # validations (curate) and answers' runs (evaluate) at once, each its own sandbox; 0 = all cores
    backend: Literal["local", "kubernetes"] = "local"  # where evaluation runs answers against their tests
    kubernetes: ExecutionKubernetes = field(default_factory=ExecutionKubernetes)

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
        require(
            self.backend in ("local", "kubernetes"), "execution.backend", f"local or kubernetes, got {self.backend!r}"
        )

    def environment_for(self, repo: str) -> RepoEnvironment | None:
        """The declared environment of ``repo`` (``OWNER/NAME``), or None when it has none."""
        return next((entry for entry in self.environments if entry.repo.lower() == repo.lower()), None)
