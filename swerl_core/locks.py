"""Inter-process locks of swerl: one place for lock files, bounded waits, and a timeout that names the holder.

Where a lock file lives (one convention for every lock):

- a caller that knows ``SWERL_HOME`` locks in ``$SWERL_HOME/locks/`` (:meth:`LockFolder.of_home`);
- a function handed only a root (a demo world's folder, a download cache, the database file) locks in a
  ``locks/`` folder beside that root, ``<root's parent>/locks/`` (:meth:`LockFolder.beside`). swerl's roots
  sit directly in ``SWERL_HOME`` (``$SWERL_HOME/demo-world``, ``$SWERL_HOME/models``, ``$SWERL_HOME/swerl.duckdb``),
  so their locks land in the same ``$SWERL_HOME/locks/``; a root elsewhere needs a parent its users may write.

What a lock file is called: a lock on one named thing is ``<name>.lock`` (``registry.lock``); a lock keyed by a
filesystem path is ``<purpose>-<digest>.lock``, the digest being the first 16 hex digits of the SHA-256 of the
*resolved* path, so every process reaching that path (through any symbolic link) takes the same lock, and a path of
any length or character set still gives a short, portable file name.

How it holds: an advisory ``flock`` on the file, which records the holder's PID. The kernel drops the ``flock``
when its holder dies (even by ``kill -9``), so a file left behind is simply taken over; the PID only tells a
waiter who is in the way. Every wait is bounded: past ``timeout_s``, :class:`~swerl_core.errors.LockTimeout`
says in one line what is held and by which PID. This module must never delete a lock file (a new holder may
have it open) and never wait without a bound.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from swerl_core.errors import LockTimeout

LOCKS = "locks"
"""The folder name of lock files, in ``SWERL_HOME`` or beside a root."""


class ProcessLock:
    """An exclusive lock between processes on the file ``path``, which records the holder's PID while held.

    ``what`` names the guarded thing in a timeout's message. Two objects on one file exclude each other even
    in one process (each opens the file anew); acquiring an object that holds the lock already does nothing,
    and one :meth:`release` frees it.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self, timeout_s: float) -> None:
        """Take the lock, waiting up to ``timeout_s`` for its holder, else raise ``LockTimeout`` naming it.

        Creates the lock's folder when missing; an ``OSError`` (a folder that cannot be written) goes up as is.
        """
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
                    raise LockTimeout(self.what, self.path, holder_pid(self.path), timeout_s) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Release the lock and clear the PID (the file stays: removing it would race a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextmanager
    def hold(self, timeout_s: float) -> Iterator[None]:
        """Hold the lock for the enclosed block (see :meth:`acquire`); released however the block ends."""
        self.acquire(timeout_s)
        try:
            yield
        finally:
            self.release()


@dataclass(frozen=True)
class LockFolder:
    """The ``locks/`` folder that a family of locks shares (see the module docstring for which one)."""

    path: Path

    @classmethod
    def of_home(cls, home: Path) -> LockFolder:
        """``$SWERL_HOME/locks``: for callers that know the home."""
        return cls(Path(home) / LOCKS)

    @classmethod
    def beside(cls, root: Path) -> LockFolder:
        """``<root's parent>/locks``: for functions handed a root (a folder or a file) and no home."""
        return cls(Path(root).resolve().parent / LOCKS)

    def named(self, name: str) -> ProcessLock:
        """The lock ``<name>.lock`` on one named thing (``name`` is a plain file name, no separator)."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"a lock name is a plain file name, not {name!r}")
        return ProcessLock(self.path / f"{name}.lock", f"the {name} lock")

    def for_path(self, purpose: str, target: Path) -> ProcessLock:
        """The lock ``<purpose>-<digest of target's resolved path>.lock`` on the thing at ``target``."""
        resolved = Path(target).resolve()
        digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:16]
        return ProcessLock(self.path / f"{purpose}-{digest}.lock", f"the {purpose} lock of {resolved}")


def lock_active(path: Path) -> bool:
    """Whether a live process holds the lock file at ``path`` (probed with a shared lock; writes nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock
    return False


def holder_pid(path: Path) -> int | None:
    """The PID recorded in the lock file at ``path``, or None when absent or unreadable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
