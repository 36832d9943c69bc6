"""The root of swerl's user-facing errors.

Each module family raises its own subclass (``ConfigError``, ``IngestError``, ``CurateError``…) with a
one-line message meant for the person running the pipeline; the CLI prints it and exits non-zero.
"""

from __future__ import annotations


class SwerlError(Exception):
    """A failure with a one-line, user-facing reason (no traceback needed to act on it)."""

    exit_code: int = 1


class ConfigError(SwerlError, ValueError):
    """A setting is unknown, malformed or out of range; the message names the key and what it accepts."""

    exit_code = 2


def require_setting(ok: bool, key: str, allowed: str) -> None:
    """Raise :class:`ConfigError` for setting ``key`` unless ``ok``; ``allowed`` says what it accepts."""
    if not ok:
        raise ConfigError(f"invalid setting {key}: expected {allowed}")
