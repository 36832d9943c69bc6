"""The two locks of a swerl database, the writer lock and the ingest lock: where they live and how they are taken.

Both are :class:`~swerl_core.locks.ProcessLock` files holding their holder's PID, in the ``locks/`` folder
beside the database file (``$SWERL_HOME/locks/`` for the default ``$SWERL_HOME/swerl.duckdb``). They are
named after the database file rather than a digest of its path, so a pod mounting ``SWERL_HOME`` elsewhere
still takes the same lock. A lock that stays busy is reported as "database is in use by PID …". This module
must never hold a lock itself: the store takes the writer lock around each write, ingest its lock for a run.
"""

from __future__ import annotations

from pathlib import Path

from swerl_core.errors import LockTimeout
from swerl_core.locks import LockFolder, ProcessLock
from swerl_core.store.errors import StoreError


def writer_lock(db_path: Path) -> ProcessLock:
    """The single-writer lock of the database at ``db_path``, held around each write (``locks/<db>.lock``)."""
    return LockFolder.beside(db_path).named(Path(db_path).name)


def ingest_lock(db_path: Path) -> ProcessLock:
    """The lock one ingest run holds for its whole duration (``locks/<db>.ingest.lock``)."""
    return LockFolder.beside(db_path).named(f"{Path(db_path).name}.ingest")


def lock_path(db_path: Path) -> Path:
    """The writer lock file of the database at ``db_path``."""
    return writer_lock(db_path).path


def take(lock: ProcessLock, db_path: Path, timeout_s: float, busy: str = "") -> None:
    """Acquire ``lock`` of the database at ``db_path``, or raise :class:`StoreError` naming the holder's PID.

    ``busy`` prefixes the message (``"another ingest is running: "``). Creates the lock's folder (and so the
    database's) first, or says which folder cannot be created.
    """
    try:
        lock.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {exc.filename or lock.path.parent}: {exc.strerror or exc}") from None
    try:
        lock.acquire(timeout_s)
    except LockTimeout as exc:
        raise StoreError(f"{busy}{in_use(exc.pid, exc.waited_s)} ({db_path})") from None
    except OSError as exc:
        raise StoreError(f"cannot lock {db_path}: {exc.strerror or exc}") from None


def in_use(pid: int | None, waited_s: float = 0.0) -> str:
    """The one-line reason a database is busy: which PID holds it, and how long we waited."""
    waited = f" (waited {waited_s:g} s for it)" if waited_s > 0 else ""
    return f"database is in use by PID {pid if pid is not None else 'unknown'}{waited}"
