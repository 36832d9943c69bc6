"""Running ``git`` as a subprocess: one place that sets a safe, non-interactive environment.

Owns :class:`GitError` and the environment every git call gets. Credentials, when needed, travel
only in ``GIT_CONFIG_*`` environment variables of the child process; this module must never put a
secret in argv, in a repository's config file, or in an error message.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from swerl_core.git.errors import GitError

_BASE_CONFIG = (
    "core.quotepath=false",
    "core.autocrlf=false",
    "diff.noprefix=false",
    "diff.mnemonicprefix=false",
    "log.showsignature=false",
    "gc.auto=0",
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a git child process: no prompts, C locale, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "GIT_ASKPASS": "true",
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


def git_argv(git_dir: Path | None, args: Sequence[str]) -> list[str]:
    """The full argv of a git call on the repository at ``git_dir`` (None: no repository)."""
    argv = ["git"]
    for item in _BASE_CONFIG:
        argv += ["-c", item]
    if git_dir is not None:
        argv += ["--git-dir", str(git_dir)]
    return argv + list(args)


def run_git(
    git_dir: Path | None,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> bytes:
    """Run ``git args`` and return its stdout; raise :class:`GitError` with git's first error line."""
    proc = subprocess.run(
        git_argv(git_dir, args),
        input=input,
        capture_output=True,
        env=git_env(env),
        check=False,
    )
    if proc.returncode not in ok_codes:
        raise GitError(f"git {args[0]} failed: {first_error_line(proc.stderr)}")
    return proc.stdout


def first_error_line(stderr: bytes) -> str:
    """The most telling line of git's stderr (``fatal:``/``error:`` first), decoded safely."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else "no error output"
