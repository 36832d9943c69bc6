"""Running a repository's code: the bubblewrap sandbox, per-repository environments and named test runs.

A shared module: curation validates instances with it and evaluation resolves answers with it, so it never imports
a stage (nor Prefect).
"""

from swerl_core.execution.environments import Environment, ensure_environment, environment_folder
from swerl_core.execution.errors import EnvironmentBuildError, ExecutionError, SandboxUnavailable
from swerl_core.execution.named_tests import Outcome, TestRun, limits_for_tests, run_named_tests
from swerl_core.execution.sandbox import Limits, SandboxResult, require_bubblewrap, run_sandboxed

__all__ = [
    "Environment",
    "EnvironmentBuildError",
    "ExecutionError",
    "Limits",
    "Outcome",
    "SandboxResult",
    "SandboxUnavailable",
    "TestRun",
    "ensure_environment",
    "environment_folder",
    "limits_for_tests",
    "require_bubblewrap",
    "run_named_tests",
    "run_sandboxed",
]
