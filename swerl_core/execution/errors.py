"""The execution package's errors: the sandbox cannot run here, or an environment cannot be built."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class ExecutionError(SwerlError):
    """Running code of a repository failed for a reason of the machine or the declaration, not of the code."""


class SandboxUnavailable(ExecutionError):
    """bubblewrap is missing or cannot create a sandbox on this machine; the message says which and what to do."""


class EnvironmentBuildError(ExecutionError):
    """A repository's declared environment did not install; the message names the repository and the step."""


class PatchDoesNotApply(ExecutionError):
    """A patch (a test patch, a gold patch, a model's answer) does not apply to its checkout; says which and why."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message ("" when it has none): how a run's verdict names a failure."""
    text = str(exc)
    return text.splitlines()[0] if text else ""
