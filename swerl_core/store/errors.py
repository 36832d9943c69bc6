"""The errors of the store: :class:`StoreError` for users, :class:`WriterLockBusy` inside the writer lock."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class StoreError(SwerlError):
    """The database cannot be opened or written (in use, too new, missing, corrupt)."""


class WriterLockBusy(Exception):
    """Another process holds the writer lock; ``pid`` is the PID written in the lock file (or None)."""

    def __init__(self, pid: int | None, waited_s: float = 0.0) -> None:
        waited = f" (waited {waited_s:g} s for it)" if waited_s > 0 else ""
        super().__init__(f"database is in use by PID {pid if pid is not None else 'unknown'}{waited}")
        self.pid = pid
