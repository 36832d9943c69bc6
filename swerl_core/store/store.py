"""The :class:`Store`: one DuckDB file on disk, its connection and sessions, the writer lock, schema upgrades.

It is the core every stage's tables are built on; the tables themselves live in one module per stage and
are reached from the store: ``store.ingest`` (:mod:`.ingest_tables`: raw repos, PRs, issues, comments,
blobs, watermarks, runs, skips), ``store.snapshots`` (:mod:`.snapshot_table`, curate's rows) and
``store.evaluations`` (:mod:`.evaluation_table`, evaluate's rows). The schema is in :mod:`.migrations`,
the damage checks in :mod:`.integrity`. It must never talk to GitHub or git, and never holds secrets.

Sharing one file between stages that run at once (a scheduled ingest during an evaluation…). DuckDB
lets one process open a file read-write *or* any number of processes open it read-only, never both,
and it takes that decision when a process opens the file. So stages open the store with
:meth:`Store.for_settings` (:meth:`Store.shared` on ``settings.db_path``), which keeps nothing open between
operations:

- a write (every writing table method, :meth:`Store.transaction`, :meth:`Store.writing`) takes the writer
  lock ``locks/<db>.lock`` (an ``flock`` holding the writer's PID), opens the file read-write, writes,
  closes it and releases the lock. It waits for another writer up to ``lock_timeout_s``
  (``store.lock_timeout_s``), then fails naming the holder's PID;
- a read (every reading table method, :meth:`Store.reading`) takes no lock: it opens the file read-only,
  reads, and closes it. When a write is in progress the open is refused; it retries until that
  short write ends (at most ``lock_timeout_s``). A writer likewise retries while readers hold the file.

Writes are therefore short (an ingest batch, one snapshot row, one evaluation row), a long stage holds
nothing while it fetches, trains or generates, and nobody waits for another stage, only for another
stage's write. Long reads (curate's pass over every PR) keep the file open read-only for as long as
they read; writes wait for them within the same bound. :meth:`Store.open` keeps one connection (and,
writable, the writer lock) for its whole life: for tools and tests that own the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb

from swerl_core.locks import ProcessLock
from swerl_core.store.errors import StoreError
from swerl_core.store.evaluation_table import EvaluationTable
from swerl_core.store.ingest_tables import IngestTables
from swerl_core.store.integrity import check_intact, first_line, is_lock_conflict, open_failure
from swerl_core.store.lock import take, writer_lock
from swerl_core.store.migrations import MIGRATIONS, Migration, apply_migrations, schema_version
from swerl_core.store.snapshot_table import SnapshotTable

if TYPE_CHECKING:
    from swerl_core.config import Settings


class Store:
    """A swerl DuckDB database: :meth:`for_settings` for stages, :meth:`open` to own the file.

    Its tables are reached per stage: :attr:`ingest`, :attr:`snapshots`, :attr:`evaluations`.
    """

    def __init__(
        self,
        path: Path,
        con: duckdb.DuckDBPyConnection | None,
        lock: ProcessLock | None,
        *,
        shared: bool = False,
        lock_timeout_s: float = 0.0,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        self.path = path
        self.lock_timeout_s = lock_timeout_s
        self._con: duckdb.DuckDBPyConnection | None = con
        self._lock = lock
        self._shared = shared
        self._session_read_only = False
        self._migrations = migrations
        self._current = False  # schema checked at this release's version
        self.ingest = IngestTables(self)
        """Ingest's tables (raw repositories, PRs, issues, comments, blobs, watermarks, runs, skips)."""
        self.snapshots = SnapshotTable(self)
        """Curate's ``snapshots`` rows."""
        self.evaluations = EvaluationTable(self)
        """Evaluate's ``evaluations`` rows."""

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        """The shared store every stage uses: :meth:`shared` on ``settings.db_path``.

        Every wait (for the writer lock, for a write in progress) is bounded by ``settings.store.lock_timeout_s``.
        """
        return cls.shared(settings.db_path, lock_timeout_s=settings.store.lock_timeout_s)

    @classmethod
    def shared(
        cls, path: Path | str, *, lock_timeout_s: float = 0.0, migrations: tuple[Migration, ...] = MIGRATIONS
    ) -> Store:
        """The database at ``path`` for a stage that shares it: nothing stays open between operations.

        Each write takes the writer lock and the file for its own duration (waiting up to
        ``lock_timeout_s`` for another writer); each read opens the file read-only for its own
        duration (retrying up to ``lock_timeout_s`` while a write is in progress). The first write
        creates and upgrades the database; a read of a missing one raises :class:`StoreError`, and so
        does a damaged file, at once.
        """
        path = Path(path)
        if path.is_file():
            check_intact(path)  # a damaged database is reported before a stage starts its work
        return cls(path, None, None, shared=True, lock_timeout_s=lock_timeout_s, migrations=migrations)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        read_only: bool = False,
        migrations: tuple[Migration, ...] = MIGRATIONS,
        lock_timeout_s: float = 0.0,
    ) -> Store:
        """Open (creating and upgrading when writable) the database at ``path``.

        A writer takes the writer lock ``locks/<db>.lock`` first, waiting up to ``lock_timeout_s`` for
        another live process holding it; then this raises :class:`StoreError` "database is in use by PID …".
        A read-only store takes no lock.
        """
        path = Path(path)
        lock = None if read_only else _take_writer_lock(path, lock_timeout_s)
        if read_only and not path.exists():
            raise StoreError(f"no database at {path}: nothing has been ingested yet")
        if path.exists() and not path.is_file():
            if lock is not None:
                lock.release()
            raise StoreError(f"{path} is not a database file")
        try:
            con = _open_checked(path, read_only, 0.0)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store = cls(path, con, lock, lock_timeout_s=lock_timeout_s, migrations=migrations)
        try:
            store._prepare(con, read_only)
        except BaseException:
            store.close()
            raise
        return store

    def _prepare(self, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        try:
            con.execute("SET TimeZone = 'UTC'")
            if self._current:  # checked (and upgraded) by an earlier session of this store
                return
            self._check_version(con, read_only)
            if not read_only:
                apply_migrations(con, self._migrations)
            self._current = True
        except duckdb.Error as exc:
            raise StoreError(f"cannot prepare database {self.path}: {first_line(exc)}") from None

    @contextmanager
    def _session(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None:
            if write and self._session_read_only:
                raise StoreError(f"internal: a write to {self.path} inside a read of it")
            yield self._con
            return
        if not self._shared:
            raise StoreError(f"database {self.path} is closed")
        if not write and not self.path.exists():
            raise StoreError(f"no database at {self.path}: nothing has been ingested yet")
        lock = _take_writer_lock(self.path, self.lock_timeout_s) if write else None
        try:
            opener = _connect if self._current else _open_checked  # verify the file once per store
            con = opener(self.path, not write, self.lock_timeout_s)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._con, self._lock, self._session_read_only = con, lock, not write
        try:
            self._prepare(con, not write)
            yield con
        finally:
            self._con, self._lock, self._session_read_only = None, None, False
            try:
                con.close()
            finally:
                if lock is not None:
                    lock.release()

    def reading(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A context manager yielding a connection to read from (read-only for a shared store)."""
        return self._session(write=False)

    def writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A context manager yielding a connection to write through, holding the writer lock meanwhile."""
        return self._session(write=True)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run the enclosed writes atomically: all of them commit, or none (also on kill -9)."""
        with self._session(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The open DuckDB connection (a store from :meth:`open`, or inside :meth:`reading`/:meth:`writing`)."""
        if self._con is None:
            if self._shared:
                raise StoreError(f"internal: no open session on {self.path} (use reading() or writing())")
            raise StoreError(f"database {self.path} is closed")
        return self._con

    @property
    def read_only(self) -> bool:
        """Whether this store was opened without the writer lock."""
        return self._lock is None

    def schema_version(self) -> int:
        """The highest migration version applied to this database."""
        with self.reading() as con:
            return schema_version(con)

    def close(self) -> None:
        """Close the connection and release the writer lock; safe to call twice (a shared store holds nothing)."""
        if self._shared:
            return
        con, self._con = self._con, None
        try:
            if con is not None:
                con.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_version(self, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        current = schema_version(con)
        newest = max((m.version for m in self._migrations), default=0)
        if current > newest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this swerl ({newest}); upgrade swerl"
            )
        if read_only and current < newest:
            raise StoreError(
                f"database {self.path} has schema version {current} (this swerl needs {newest}); "
                "open it once for writing (an ingest does) to upgrade it"
            )


def _take_writer_lock(path: Path, timeout_s: float) -> ProcessLock:
    lock = writer_lock(path)
    take(lock, path, timeout_s)
    return lock


def _open_checked(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """:func:`_connect` after checking that an existing file is an intact database (a damaged one is never written)."""
    if path.exists():
        check_intact(path, every_block=not read_only)
    return _connect(path, read_only, timeout_s)


def _connect(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying up to ``timeout_s`` while another process holds the file in a conflicting mode."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            left = deadline - time.monotonic()
            if not is_lock_conflict(first_line(exc)) or left <= 0:
                raise StoreError(open_failure(path, exc, timeout_s)) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)
