"""The single-writer lock of a swerl database: a ``<db>.lock`` file holding the writer's PID.

The lock is an advisory ``flock`` on that file, so the kernel releases it when the writer dies
(even by ``kill -9``); a lock file left behind by a dead process is therefore simply taken over.
This module must never delete a lock that another live process holds.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class WriterLockBusy(Exception):
    """Another process holds the writer lock; ``pid`` is the PID written in the lock file (or None)."""

    def __init__(self, pid: int | None, waited_s: float = 0.0) -> None:
        waited = f" (waited {waited_s:g} s for it)" if waited_s > 0 else ""
        super().__init__(f"database is in use by PID {pid if pid is not None else 'unknown'}{waited}")
        self.pid = pid


class WriterLock:
    """An exclusive lock on ``path`` that records the holder's PID inside the file; waits a bounded time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self, timeout_s: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout_s`` for its holder; else raise :class:`WriterLockBusy` naming it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    os.close(fd)
                    raise WriterLockBusy(holder_pid(self.path), timeout_s) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Release the lock and clear the PID (the file stays: removing it would race a new writer)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def holder_pid(path: Path) -> int | None:
    """The PID recorded in the lock file at ``path``, or None when absent or unreadable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
