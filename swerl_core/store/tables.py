"""What a stage's family of tables is built on: the store it goes through, and sessions around each method.

A family (:class:`~swerl_core.store.ingest_tables.IngestTables`, …) groups the tables one stage writes. Its
methods are wrapped by :func:`reads` or :func:`writes`, which open the store's session for that one call
(read-only, or under the writer lock) and hand the method its connection; inside
:meth:`~swerl_core.store.Store.transaction` they join the open session instead. This module also owns
how a record (a frozen dataclass whose fields are a table's columns) becomes a row. It must never hold a
connection between calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import fields
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import duckdb


class Sessions(Protocol):
    """What a family of tables needs from its store (:class:`~swerl_core.store.Store` is one): the database file,
    how long a write waits for the lock, and one session per call."""

    @property
    def path(self) -> Path:
        """The DuckDB file."""
        ...

    @property
    def lock_timeout_s(self) -> float:
        """How long a write waits for the writer lock."""
        ...

    def reading(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection to read from, for one call."""
        ...

    def writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection to write through, holding the writer lock, for one call."""
        ...


class StageTables:
    """The tables one stage owns, reached from the store (``store.ingest``, ``store.snapshots``, …)."""

    def __init__(self, store: Sessions) -> None:
        self.store = store


_Tables = TypeVar("_Tables", bound=StageTables)
_Args = ParamSpec("_Args")
_Result = TypeVar("_Result")
_Method = Callable[Concatenate[_Tables, duckdb.DuckDBPyConnection, _Args], _Result]


def reads(method: _Method[_Tables, _Args, _Result]) -> Callable[Concatenate[_Tables, _Args], _Result]:
    """Run ``method`` in a read session of its store, passing the connection after ``self``."""
    return _in_session(method, write=False)


def writes(method: _Method[_Tables, _Args, _Result]) -> Callable[Concatenate[_Tables, _Args], _Result]:
    """Run ``method`` in a write session of its store (the writer lock held), passing the connection after ``self``."""
    return _in_session(method, write=True)


def _in_session(
    method: _Method[_Tables, _Args, _Result], write: bool
) -> Callable[Concatenate[_Tables, _Args], _Result]:
    @functools.wraps(method)
    def wrapper(self: _Tables, /, *args: _Args.args, **kwargs: _Args.kwargs) -> _Result:
        with self.store.writing() if write else self.store.reading() as con:
            return method(self, con, *args, **kwargs)

    return wrapper


def row_values(record: object) -> list[object]:
    """The column values of ``record`` in field order (tuples become lists, DuckDB's ``[]`` columns)."""
    names = _FIELDS.get(type(record))
    if names is None:
        names = _FIELDS[type(record)] = tuple(f.name for f in fields(record))  # type: ignore[arg-type]
    values = (getattr(record, name) for name in names)
    return [list(v) if isinstance(v, tuple) else v for v in values]


def insert_row(con: duckdb.DuckDBPyConnection, table: str, record: object, conflict: str | None = None) -> int:
    """Insert ``record`` into ``table`` by column name (``conflict``: an ``ON CONFLICT`` clause); rows inserted."""
    values = row_values(record)
    names = _FIELDS[type(record)]
    on_conflict = f" ON CONFLICT {conflict}" if conflict else ""
    rows = con.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}){on_conflict} RETURNING 1",
        values,
    ).fetchall()
    return len(rows)


_FIELDS: dict[type, tuple[str, ...]] = {}
