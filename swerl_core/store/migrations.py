"""The DuckDB schema of swerl, as an ordered list of versioned migrations.

This module owns every ``CREATE``/``ALTER`` statement. A database records the versions it has
applied in ``schema_migrations``; opening it with a newer release applies the missing ones in order,
each in its own transaction, so an old database is upgraded in place and never rebuilt.
It must never drop or rewrite user data: a migration only adds tables, columns, views or indexes.
Released migrations are never edited; a change is a new migration appended at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a short name and the SQL statements it runs."""

    version: int
    name: str
    statements: tuple[str, ...]


_CORE = (
    """CREATE TABLE repos (
        name VARCHAR PRIMARY KEY,            -- canonical owner/name as the API reports it
        github_id BIGINT,
        clone_url VARCHAR NOT NULL,
        default_branch VARCHAR,
        renamed_from VARCHAR,                -- the name that was asked for, when GitHub answered 301
        mirror_path VARCHAR,
        first_seen_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE pull_requests (
        repo VARCHAR NOT NULL,
        number INTEGER NOT NULL,
        github_id BIGINT,
        title VARCHAR NOT NULL,
        body VARCHAR NOT NULL,
        author_login VARCHAR,
        author_type VARCHAR,
        author_is_bot BOOLEAN NOT NULL,
        labels VARCHAR[] NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        closed_at TIMESTAMPTZ,
        merged_at TIMESTAMPTZ NOT NULL,
        base_ref VARCHAR NOT NULL,
        head_ref VARCHAR,
        base_sha VARCHAR NOT NULL,
        head_sha VARCHAR NOT NULL,
        merge_commit_sha VARCHAR,
        merge_base_sha VARCHAR NOT NULL,
        first_commit_at TIMESTAMPTZ,
        commit_messages VARCHAR[] NOT NULL,
        has_linked_issue BOOLEAN NOT NULL,
        n_files INTEGER NOT NULL,
        code_patch VARCHAR NOT NULL,
        test_patch VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        ingested_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (repo, number)
    )""",
    """CREATE TABLE pr_files (
        repo VARCHAR NOT NULL,
        pr_number INTEGER NOT NULL,
        path VARCHAR NOT NULL,               -- the new path; the old one for a deleted file
        old_path VARCHAR,                    -- set for renames and deletes
        status VARCHAR NOT NULL,             -- A added, M modified, D deleted, R renamed
        is_binary BOOLEAN NOT NULL,
        is_test BOOLEAN NOT NULL,
        old_blob_sha VARCHAR,
        new_blob_sha VARCHAR,
        old_size BIGINT,
        new_size BIGINT,
        additions INTEGER,
        deletions INTEGER,
        PRIMARY KEY (repo, pr_number, path)
    )""",
    """CREATE TABLE blobs (
        sha VARCHAR PRIMARY KEY,             -- git blob SHA: each content is stored once
        size BIGINT NOT NULL,
        is_binary BOOLEAN NOT NULL,
        invalid_utf8 BOOLEAN NOT NULL,       -- decoded with U+FFFD replacement
        too_large BOOLEAN NOT NULL,
        content VARCHAR                      -- NULL for binary or too-large blobs
    )""",
    """CREATE TABLE issues (
        repo VARCHAR NOT NULL,
        number INTEGER NOT NULL,
        github_id BIGINT,
        title VARCHAR NOT NULL,
        body VARCHAR NOT NULL,
        author_login VARCHAR,
        author_type VARCHAR,
        state VARCHAR NOT NULL,
        state_reason VARCHAR,
        labels VARCHAR[] NOT NULL,
        comments_count INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        closed_at TIMESTAMPTZ,
        PRIMARY KEY (repo, number)
    )""",
    """CREATE TABLE issue_comments (
        repo VARCHAR NOT NULL,
        id BIGINT NOT NULL,
        issue_number INTEGER NOT NULL,       -- issue or pull request number (GitHub shares them)
        author_login VARCHAR,
        author_type VARCHAR,
        body VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (repo, id)
    )""",
    """CREATE TABLE pr_issue_links (
        repo VARCHAR NOT NULL,
        pr_number INTEGER NOT NULL,
        issue_repo VARCHAR NOT NULL,         -- owner/name the reference points at
        issue_number INTEGER NOT NULL,
        kind VARCHAR NOT NULL,               -- issue | pull_request | cross_repo | missing | transferred
        sources VARCHAR[] NOT NULL,          -- title | body | commit | graphql
        PRIMARY KEY (repo, pr_number, issue_repo, issue_number)
    )""",
    """CREATE TABLE skipped_prs (
        repo VARCHAR NOT NULL,
        number INTEGER NOT NULL,
        reason VARCHAR NOT NULL,             -- not_merged | draft | head_commit_missing | …
        detail VARCHAR,
        updated_at TIMESTAMPTZ NOT NULL,     -- the PR's updated_at when it was skipped
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (repo, number)
    )""",
    """CREATE TABLE watermarks (
        repo VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,             -- pulls | issues | comments
        value TIMESTAMPTZ NOT NULL,          -- everything updated before it has been committed
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (repo, stream)
    )""",
    """CREATE TABLE ingest_runs (
        id VARCHAR PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,             -- running | ok | stopped | failed | aborted
        repos VARCHAR[] NOT NULL,
        prs_new INTEGER NOT NULL DEFAULT 0,
        prs_updated INTEGER NOT NULL DEFAULT 0,
        prs_skipped INTEGER NOT NULL DEFAULT 0,
        skipped_by_reason_json VARCHAR NOT NULL DEFAULT '{}',
        issues_upserted INTEGER NOT NULL DEFAULT 0,
        api_requests INTEGER NOT NULL DEFAULT 0,
        rate_limit_waits INTEGER NOT NULL DEFAULT 0,
        rate_limit_wait_s DOUBLE NOT NULL DEFAULT 0,
        duration_s DOUBLE,
        message VARCHAR
    )""",
)

_SNAPSHOTS = (
    """CREATE TABLE snapshots (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        train_rows BIGINT NOT NULL,
        heldout_rows BIGINT NOT NULL,
        manifest_path VARCHAR NOT NULL,
        config_json VARCHAR NOT NULL,
        source_watermarks_json VARCHAR NOT NULL
    )""",
    # The SWE-RL "hints": comments on a linked issue written before the PR's first commit.
    """CREATE VIEW pr_issue_hints AS
        SELECT l.repo, l.pr_number, l.issue_number, c.id AS comment_id, c.author_login, c.body, c.created_at
        FROM pr_issue_links l
        JOIN pull_requests p ON p.repo = l.repo AND p.number = l.pr_number
        JOIN issue_comments c ON c.repo = l.repo AND c.issue_number = l.issue_number
        WHERE l.kind = 'issue' AND l.issue_repo = l.repo
          AND (p.first_commit_at IS NULL OR c.created_at < p.first_commit_at)""",
)

_EVALUATIONS = (
    """CREATE TABLE evaluations (
        id VARCHAR PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        model_ref VARCHAR NOT NULL,          -- a checkpoint path or models:/NAME/VERSION as evaluated
        model_name VARCHAR,                  -- registered model name, when the model is a version
        model_version VARCHAR,
        snapshot_id VARCHAR NOT NULL,        -- or the instance file, for SWE-bench Verified
        split VARCHAR NOT NULL,              -- heldout | swebench-verified
        samples INTEGER NOT NULL,            -- K samples per instance (greedy when 1)
        backend VARCHAR NOT NULL,
        n_instances INTEGER NOT NULL,
        n_samples INTEGER NOT NULL,
        mean_reward DOUBLE NOT NULL,
        format_error_rate DOUBLE NOT NULL,
        exact_match_rate DOUBLE NOT NULL,
        apply_rate DOUBLE NOT NULL,
        best_of_k_reward DOUBLE NOT NULL,
        path_escapes INTEGER NOT NULL,
        tokens_generated BIGINT NOT NULL,
        per_repo_json VARCHAR NOT NULL,
        generation_s DOUBLE NOT NULL,
        reward_s DOUBLE NOT NULL,
        resolved_rate DOUBLE,                -- SWE-bench harness; NULL when it did not run
        harness_note VARCHAR,
        predictions_path VARCHAR NOT NULL,
        mlflow_run_id VARCHAR
    )""",
)

# The evaluation protocol (snapshot, split, K, instances, decoding settings): rows are reused only under
# the protocol they were run with; rows from before this migration have none and are never reused.
_EVALUATION_PROTOCOL = (
    "ALTER TABLE evaluations ADD COLUMN protocol VARCHAR",  # fingerprint, see swerl_core.evaluate.protocol
    "ALTER TABLE evaluations ADD COLUMN protocol_json VARCHAR",  # the settings behind the fingerprint
)

# A PR written while a link source could not be asked (today only GitHub's GraphQL closing references: no token,
# or a token without GraphQL access) carries the source's name; the next run that reaches it re-links exactly
# those PRs and clears the mark. PRs written by an earlier anonymous run are marked here, as that run would have.
_LINK_SOURCES = (
    "ALTER TABLE pull_requests ADD COLUMN links_missing_source VARCHAR",  # NULL: every link source answered
    """UPDATE pull_requests SET links_missing_source = 'graphql'
        WHERE run_id IN (SELECT id FROM ingest_runs WHERE starts_with(coalesce(message, ''), 'no token:'))""",
)

# An evaluation's row is written before its MLflow logging, so that an MLflow failure at the end loses nothing:
# ``mlflow_logged`` is FALSE until the logging finished (a rerun completes it from the row, without evaluating
# again), and the failure rates it logs are kept with the row. Rows from before were written after their logging.
_EVALUATION_ROWS_FIRST = (
    "ALTER TABLE evaluations ADD COLUMN failure_rates_json VARCHAR",
    "ALTER TABLE evaluations ADD COLUMN mlflow_logged BOOLEAN",
    "UPDATE evaluations SET mlflow_logged = TRUE",
)

# Evaluations that run answers against their tests keep what the runs said (resolved rate, its interval, the
# reward's calibration) beside the row; ``resolved_rate`` then holds the sandbox's rate. Earlier rows ran none.
_EVALUATION_EXECUTION = ("ALTER TABLE evaluations ADD COLUMN execution_json VARCHAR",)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core ingest tables", _CORE),
    Migration(2, "snapshots table and issue hints view", _SNAPSHOTS),
    Migration(3, "evaluations table", _EVALUATIONS),
    Migration(4, "evaluation protocol fingerprint", _EVALUATION_PROTOCOL),
    Migration(5, "pull requests whose link sources were incomplete", _LINK_SOURCES),
    Migration(6, "evaluation rows recorded before their MLflow logging", _EVALUATION_ROWS_FIRST),
    Migration(7, "what running evaluated answers against their tests said", _EVALUATION_EXECUTION),
)
"""Every migration of this release, oldest first."""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration version applied to the database behind ``con`` (0 for a new one)."""
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open and refuses the next query.
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()
    if not exists[0][0]:
        return 0
    rows = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    return int(rows[0][0])


def apply_migrations(con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations newer than the database's version, each atomically; return their versions."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    current = schema_version(con)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [migration.version, migration.name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
