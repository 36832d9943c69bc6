"""Secrets read at the edge: the GitHub token, wrapped in :class:`Secret` so it can never be printed.

Secrets are never settings: nothing here is read from the settings file, and a :class:`Secret` shows
itself as stars in ``repr``, logs and tracebacks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from swerl_core.errors import ConfigError


class Secret:
    """A string that never shows itself in ``repr``/``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value; call only where it is handed to the service that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def github_token(env: Mapping[str, str] | None = None) -> Secret | None:
    """The GitHub token from ``GITHUB_TOKEN`` (or ``GH_TOKEN``), wrapped so it never prints."""
    env = os.environ if env is None else env
    # A token read from a file (a Kubernetes Secret, `$(cat token)`) often ends in a newline: never part of it.
    value = (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "").strip()
    if any(c.isspace() for c in value):
        raise ConfigError("GITHUB_TOKEN holds whitespace inside it: not a GitHub token")
    return Secret(value) if value else None
