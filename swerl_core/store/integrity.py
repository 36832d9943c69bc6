"""Whether a DuckDB file is an intact swerl database, and what a failed open means, in one line for the user.

Owns the damage checks (headers readable, file not cut short, every block's checksum) and the wording of
open failures (in use by a PID, damaged, anything else). It only ever opens a database read-only and must
never write, repair or delete one.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from swerl_core.locks import holder_pid
from swerl_core.store.errors import StoreError
from swerl_core.store.lock import in_use, lock_path

_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the first block


def check_intact(path: Path, every_block: bool = False) -> None:
    """Raise :class:`StoreError` when the DuckDB file at ``path`` is damaged (unreadable headers, cut short).

    Opens the file read-only, so a damaged database is diagnosed without a single write to it. A file
    with a write-ahead log next to it is not size-checked (the log may still hold its newest blocks).
    ``every_block`` also reads every column of every table, so DuckDB verifies each block's checksum
    (a writer does this before its first write; about 0.1 s for 20 MB).
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if is_lock_conflict(first_line(exc)):
            return  # another process has it open; the writable connection reports who
        raise StoreError(open_failure(path, exc)) from None
    try:
        _, _, block_size, _, used_blocks, *_ = con.execute("PRAGMA database_size").fetchone() or (0, 0, 0, 0, 0)
        if every_block:
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
            for schema, table in tables:
                con.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{schema}"."{table}"').fetchall()
    except duckdb.Error as exc:
        raise StoreError(_damaged(path, first_line(exc))) from None
    finally:
        con.close()
    wal = path.with_name(path.name + ".wal")
    # Free blocks at the end of the file may be truncated away (the file is then shorter than total_blocks),
    # but every used block lies inside the file: fewer bytes than the used blocks need means it was cut.
    expected = _HEADER_BYTES + int(used_blocks) * int(block_size)
    if not wal.exists() and int(used_blocks) > 0 and path.stat().st_size < expected:
        raise StoreError(_damaged(path, f"the file is cut short ({path.stat().st_size} of {expected} bytes)"))


def open_failure(path: Path, exc: duckdb.Error, waited_s: float = 0.0) -> str:
    """The user's one line for DuckDB refusing to open ``path``: in use (by which PID), damaged, or else."""
    text = first_line(exc)
    if is_lock_conflict(text):
        # DuckDB names the process holding the file ("… (PID 1234)"); our writer lock file names a writer.
        found = re.search(r"PID (\d+)", text)
        pid = int(found.group(1)) if found else holder_pid(lock_path(path))
        return f"{in_use(pid, waited_s)} ({path})"
    lowered = text.lower()
    if any(mark in lowered for mark in ("corrupt", "checksum", "could not read enough bytes", "not a valid duckdb")):
        return _damaged(path, text)
    return f"cannot open database {path}: {text}"


def is_lock_conflict(text: str) -> bool:
    """Whether DuckDB's error ``text`` says another process holds the file in a conflicting mode."""
    lowered = text.lower()
    return "could not set lock" in lowered or "conflicting lock" in lowered


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _damaged(path: Path, detail: str) -> str:
    return (
        f"database {path} is damaged ({detail}); swerl did not write to it. Move it aside and rerun "
        "`swerl ingest` to rebuild it from GitHub (mirrors are reused), or restore a backup"
    )
