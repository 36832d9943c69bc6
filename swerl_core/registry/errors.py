"""The error of the registry, :class:`RegistryError`, with a one-line reason."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class RegistryError(SwerlError):
    """A registry operation was refused or failed (failed gate, unknown version, no previous champion)."""
