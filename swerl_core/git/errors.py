"""The error of git operations, :class:`GitError`, with a one-line reason."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class GitError(SwerlError):
    """A git operation failed (mirror fetch, unknown commit, unreadable object)."""
