"""Reading the raw tables ingest wrote, from DuckDB into Polars through Arrow.

DuckDB does what it is best at — joins, aggregations, string lengths — so only the columns the
stages decide on reach Python: pull requests stream in record batches (bounded memory at any
size), file rows come with the length of their stored contents but not the contents, which are
read only for the pull requests that survive every filter. This module never writes the store.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

# One row per pull request: its linked issues of the same repository and their text (the problem statement).
_PULL_REQUESTS = """
WITH links AS (
    SELECT l.repo, l.pr_number,
        list(l.issue_number ORDER BY l.issue_number) FILTER (WHERE i.number IS NOT NULL) AS issue_numbers,
        count(*) FILTER (WHERE l.kind = 'issue' AND l.issue_repo = l.repo AND i.number IS NULL) AS issues_missing,
        count(*) FILTER (WHERE l.kind = 'cross_repo' OR l.issue_repo <> l.repo) AS issues_elsewhere,
        count(*) FILTER (WHERE l.kind IN ('missing', 'transferred')) AS issues_gone,
        string_agg(trim(i.title || chr(10) || chr(10) || coalesce(i.body, ''), ' ' || chr(9) || chr(10) || chr(13)),
                   chr(10) || chr(10)
                   ORDER BY l.issue_number) FILTER (WHERE i.number IS NOT NULL) AS problem_statement
    FROM pr_issue_links l
    LEFT JOIN issues i ON i.repo = l.repo AND i.number = l.issue_number
        AND l.kind = 'issue' AND l.issue_repo = l.repo
    GROUP BY l.repo, l.pr_number
)
SELECT p.repo, p.number::BIGINT AS pr_number, p.updated_at, coalesce(p.title, '') AS title,
    coalesce(p.body, '') AS body, p.author_login, p.author_type, coalesce(p.author_is_bot, false) AS author_is_bot,
    p.created_at, p.merged_at, p.merge_base_sha AS base_commit, p.n_files::BIGINT AS n_files,
    coalesce(p.code_patch, '') || coalesce(p.test_patch, '') AS patch,
    coalesce(l.issue_numbers, []::BIGINT[])::BIGINT[] AS issue_numbers,
    coalesce(l.issues_missing, 0)::BIGINT AS issues_missing,
    coalesce(l.issues_elsewhere, 0)::BIGINT AS issues_elsewhere,
    coalesce(l.issues_gone, 0)::BIGINT AS issues_gone,
    coalesce(l.problem_statement, '') AS problem_statement, p.links_missing_source
FROM pull_requests p LEFT JOIN links l ON l.repo = p.repo AND l.pr_number = p.number
"""

# One row per changed file, with what the store holds of its old and new content (lengths, not text).
_FILES = """
SELECT f.repo, f.pr_number::BIGINT AS pr_number, f.path, f.old_path, f.status,
    coalesce(f.is_binary, false) AS is_binary,
    f.old_blob_sha, f.new_blob_sha,
    coalesce(ob.is_binary, false) OR coalesce(nb.is_binary, false) AS blob_binary,
    coalesce(ob.invalid_utf8, false) OR coalesce(nb.invalid_utf8, false) AS invalid_utf8,
    coalesce(ob.too_large, false) OR coalesce(nb.too_large, false) AS too_large,
    ob.content IS NOT NULL AS old_readable, nb.content IS NOT NULL AS new_readable,
    coalesce(length(ob.content), 0)::BIGINT AS old_chars
FROM pr_files f
LEFT JOIN blobs ob ON ob.sha = f.old_blob_sha
LEFT JOIN blobs nb ON nb.sha = f.new_blob_sha
"""

# Order-independent digests of every input a snapshot depends on (run ids and write times left out).
_FINGERPRINTS = {
    "pull_requests": "repo, number, updated_at, merged_at, merge_base_sha, head_sha, title, md5(body), "
    "md5(code_patch), md5(test_patch), author_login, author_type, author_is_bot, links_missing_source",
    "pr_files": "repo, pr_number, path, old_path, status, is_binary, old_blob_sha, new_blob_sha",
    "pr_issue_links": "repo, pr_number, issue_repo, issue_number, kind",
    "issues": "repo, number, updated_at, title, md5(body)",
    "issue_comments": "repo, id, issue_number, created_at, updated_at, md5(body)",
    "blobs": "sha, is_binary, invalid_utf8, too_large, content IS NULL",
}


def pull_request_batches(con: duckdb.DuckDBPyConnection, batch_rows: int) -> Generator[pl.DataFrame, None, None]:
    """Every stored pull request with its linked-issue summary, ``batch_rows`` at a time.

    No ORDER BY: sorting would make DuckDB hold every row (patches included) before the first batch;
    the stages that depend on order sort their own slim frames. Close the iterator when stopping early: the
    connection runs no other query while the result is open.
    """
    reader = con.sql(_PULL_REQUESTS).to_arrow_reader(batch_rows)
    try:
        for batch in reader:
            if batch.num_rows:
                yield pl.from_arrow(pa.Table.from_batches([batch]))  # type: ignore[misc]
    finally:
        reader.close()


def changed_files(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every changed-file row with blob flags and the stored old content's length (no contents)."""
    return pl.from_arrow(con.sql(_FILES).to_arrow_table())  # type: ignore[return-value]


def input_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per input table: row count and an order-independent digest of its rows (changes when any row does)."""
    out = {}
    for table, columns in _FINGERPRINTS.items():
        query = f"SELECT count(*), bit_xor(md5_number(concat_ws('|', {columns}))) FROM {table}"
        count, digest = con.sql(query).fetchall()[0]
        out[table] = f"{count}:{digest or 0}"
    return out


def source_watermarks(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """The ingest watermarks (per repository and stream) the snapshot was cut from."""
    rows = con.sql("SELECT repo, stream, value FROM watermarks ORDER BY repo, stream").fetchall()
    out: dict[str, dict[str, str]] = {}
    for repo, stream, value in rows:
        out.setdefault(repo, {})[stream] = value.isoformat()
    return out


def mirror_dirs(con: duckdb.DuckDBPyConnection, mirrors_dir: Path) -> dict[str, Path]:
    """The bare git mirror of every repository: the path ingest recorded, else the default layout."""
    from swerl_core.git import mirror_path

    out = {}
    for name, recorded in con.sql("SELECT name, mirror_path FROM repos").fetchall():
        path = Path(recorded) if recorded else mirror_path(mirrors_dir, name)
        out[name] = path if path.exists() else mirror_path(mirrors_dir, name)
    return out


def survivor_texts(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
    """For ``keys`` (repo, pr_number): the stored patch, the problem statement and the hints.

    Hints are the linked issues' comments written before the PR's first commit (paper §2.1).
    """
    with _registered(con, "_curate_keys", keys.select("repo", "pr_number")):
        table = con.sql(
            f"""WITH hints AS (
                    SELECT h.repo, h.pr_number,
                        string_agg(h.body, chr(10) || chr(10) ORDER BY h.created_at, h.comment_id) AS hints
                    FROM pr_issue_hints h SEMI JOIN _curate_keys k ON k.repo = h.repo AND k.pr_number = h.pr_number
                    GROUP BY h.repo, h.pr_number)
                SELECT q.repo, q.pr_number, q.patch, q.problem_statement, coalesce(h.hints, '') AS hints
                FROM ({_PULL_REQUESTS}) q
                SEMI JOIN _curate_keys k ON k.repo = q.repo AND k.pr_number = q.pr_number
                LEFT JOIN hints h ON h.repo = q.repo AND h.pr_number = q.pr_number"""
        ).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def blob_texts(con: duckdb.DuckDBPyConnection, shas: list[str]) -> dict[str, str]:
    """Stored text of the given blobs (binary, too large or absent ones left out)."""
    if not shas:
        return {}
    wanted = pa.table({"sha": pa.array(sorted(set(shas)), pa.string())})
    with _registered(con, "_curate_shas", wanted):
        rows = con.sql(
            "SELECT b.sha, b.content FROM blobs b JOIN _curate_shas s ON s.sha = b.sha WHERE b.content IS NOT NULL"
        ).fetchall()
    return {sha: content for sha, content in rows}


class _registered:
    """Register an Arrow/Polars table as a DuckDB view for the duration of a ``with`` block."""

    def __init__(self, con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
        self.con, self.name = con, name
        self.table = table.to_arrow() if isinstance(table, pl.DataFrame) else table

    def __enter__(self) -> None:
        self.con.register(self.name, self.table)

    def __exit__(self, *exc: object) -> None:
        self.con.unregister(self.name)
