"""Running a repository's code: the bubblewrap sandbox, per-repository environments and named test runs.

A shared module: curation validates instances with it and evaluation resolves answers with it, so it never imports
a stage (nor Prefect).
"""

from swerl_core.execution.checkouts import apply_patch, patch_paths, prepared_checkout
from swerl_core.execution.environments import Environment, ensure_environment, environment_folder
from swerl_core.execution.errors import EnvironmentBuildError, ExecutionError, PatchDoesNotApply, SandboxUnavailable
from swerl_core.execution.named_tests import Outcome, TestRun, limits_for_tests, run_named_tests, run_test_files
from swerl_core.execution.resolution import ExecutableInstance, Resolution, resolve, swebench_instance
from swerl_core.execution.sandbox import Limits, SandboxResult, remove_tree, require_bubblewrap, run_sandboxed
from swerl_core.execution.validation import PullRequestCode, Validation, classify, validate_instance

__all__ = [
    "Environment",
    "EnvironmentBuildError",
    "ExecutableInstance",
    "ExecutionError",
    "Limits",
    "Outcome",
    "PatchDoesNotApply",
    "PullRequestCode",
    "Resolution",
    "SandboxResult",
    "SandboxUnavailable",
    "TestRun",
    "Validation",
    "apply_patch",
    "classify",
    "ensure_environment",
    "environment_folder",
    "limits_for_tests",
    "patch_paths",
    "prepared_checkout",
    "remove_tree",
    "require_bubblewrap",
    "resolve",
    "run_named_tests",
    "run_sandboxed",
    "run_test_files",
    "swebench_instance",
    "validate_instance",
]
