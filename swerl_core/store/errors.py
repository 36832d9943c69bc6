"""The error of the store: :class:`StoreError`, for users."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class StoreError(SwerlError):
    """The database cannot be opened or written (in use, too new, missing, corrupt)."""
