"""The root of swerl's user-facing errors.

Each module family raises its own subclass (``ConfigError``, ``IngestError``, ``CurateError``…) with a
one-line message meant for the person running the pipeline; the CLI prints it and exits non-zero.
Where errors live, one rule: a package's in its ``errors.py`` (re-exported by its ``__init__``); the
shared modules' (settings, snapshots, run directories, models, the bucket) here.
"""

from __future__ import annotations

from pathlib import Path


class SwerlError(Exception):
    """A failure with a one-line, user-facing reason (no traceback needed to act on it)."""

    exit_code: int = 1


class ConfigError(SwerlError, ValueError):
    """A setting is unknown, malformed or out of range; the message names the key and what it accepts."""

    exit_code = 2


class ModelError(SwerlError):
    """A model reference cannot be resolved (not a model directory, unknown registry URI, failed download)."""


class AccessDenied(SwerlError):
    """A server refused the caller: no credentials, wrong ones, or a permission it lacks ("not allowed: …")."""


class SnapshotError(SwerlError):
    """A snapshot is missing (``missing``), or its manifest or a split is unreadable or inconsistent."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class EndpointError(SwerlError):
    """The endpoint refused, failed every attempt, or answered something that is not a chat completion."""


class FormatError(ValueError):
    """The model's answer breaks the SWE-RL format; the message is the short reason for a −1 reward."""


def require_setting(ok: bool, key: str, allowed: str) -> None:
    """Raise :class:`ConfigError` for setting ``key`` unless ``ok``; ``allowed`` says what it accepts."""
    if not ok:
        raise ConfigError(f"invalid setting {key}: expected {allowed}")


class StorageError(SwerlError):
    """Shared storage (an S3-compatible bucket) refused, failed, or holds a partial or corrupted publication."""


class RunError(SwerlError):
    """A training run directory asked for is not there: nothing to resume, or no finished run on a snapshot."""


class LockTimeout(SwerlError):
    """An inter-process lock (:mod:`swerl_core.locks`) stayed held by another process for all of ``waited_s``.

    ``pid`` is the holder's PID when its lock file names one; ``what`` names the lock, ``path`` its file.
    """

    def __init__(self, what: str, path: Path, pid: int | None, waited_s: float) -> None:
        holder = f"PID {pid}" if pid is not None else "another process"
        super().__init__(f"{what} is held by {holder}; gave up after waiting {waited_s:g} s (lock file {path})")
        self.what = what
        self.path = path
        self.pid = pid
        self.waited_s = waited_s
