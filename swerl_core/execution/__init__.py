"""Running a repository's code: the bubblewrap sandbox, per-repository environments and named test runs.

A shared module: curation validates instances with it and evaluation resolves answers with it, so it never imports
a stage (nor Prefect).
"""

from swerl_core.execution.errors import EnvironmentBuildError, ExecutionError, SandboxUnavailable
from swerl_core.execution.sandbox import Limits, SandboxResult, require_bubblewrap, run_sandboxed

__all__ = [
    "EnvironmentBuildError",
    "ExecutionError",
    "Limits",
    "SandboxResult",
    "SandboxUnavailable",
    "require_bubblewrap",
    "run_sandboxed",
]
