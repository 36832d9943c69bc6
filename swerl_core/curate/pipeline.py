"""The curate entry point: raw PRs in the store → a snapshot (stages 1–10, the funnel, the write).

:func:`select_pull_requests` runs the filtering stages over the whole store in record batches and
keeps one slim row per surviving PR; :func:`curate` then splits by time, reads the survivors' texts
and file contents, checks the prompt budget, adds relevant unmodified files, validates the rows of
repositories with an execution environment (:mod:`.executable`) and writes the snapshot. Nothing here
imports Prefect; flows and the CLI call :func:`curate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from swerl_core.bucket import publish_snapshot
from swerl_core.config import Settings
from swerl_core.config.curate import CurateConfig
from swerl_core.curate.decontaminate import contamination_reason, read_benchmark
from swerl_core.curate.dedup import dedup_reason
from swerl_core.curate.errors import CurateError, EmptySnapshotError
from swerl_core.curate.executable import validate_rows
from swerl_core.curate.filters import (
    LINKS_INCOMPLETE,
    apply_stage,
    bot_reason,
    code_only_reason,
    file_summary,
    linked_issue_reason,
    size_reason,
    split_patches,
    with_file_summary,
)
from swerl_core.curate.funnel import FunnelCounter, StageCount, funnel_dict, render_funnel
from swerl_core.curate.patches import patch_hash_expr, text_hash_expr
from swerl_core.curate.retrieval import LlmRanker, RelevantFiles, mirror_states
from swerl_core.curate.snapshot import (
    FORMAT_VERSION,
    Snapshot,
    now_iso,
    remove_stale_temp_dirs,
    snapshot_id,
    snapshot_record,
    write_snapshot,
)
from swerl_core.curate.source import (
    blob_texts,
    changed_files,
    input_fingerprint,
    mirror_dirs,
    pull_request_batches,
    source_watermarks,
    survivor_texts,
)
from swerl_core.curate.split import heldout_bound, heldout_bound_record, heldout_mask, leak_reason
from swerl_core.curate.tokens import PromptCounter, tokenizer_digest
from swerl_core.errors import SnapshotError
from swerl_core.execution.environments import execution_inputs
from swerl_core.file_kinds import CODE, file_kind_expr
from swerl_core.git import GitError
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.snapshots import CURATED_KEYS, SPLITS, read_manifest, snapshot_damage

if TYPE_CHECKING:
    from swerl_core.store import Store

# In exact-token mode the length-based check only guards against absurd prompts (a megabyte issue)
# before the tokenizer sees them: no tokenizer averages more than this many characters per token.
_GUARD_CHARS_PER_TOKEN = 16.0
_SLIM = ["repo", "pr_number", "updated_at", "created_at", "merged_at", "base_commit", "issue_numbers",
         "languages", "code_hash", "problem_hash"]  # fmt: skip


def curate(
    store: Store,
    settings: Settings | CurateConfig,
    *,
    name: str = "snapshot",
    heldout_after: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> Snapshot:
    """Curate every PR in ``store`` into a snapshot under ``settings.snapshots_dir`` and record it in the store.

    ``settings`` is the whole :class:`~swerl_core.config.Settings` or just a :class:`CurateConfig`
    (then home is the database's directory). ``heldout_after`` overrides ``curate.heldout_after``.
    Unchanged input and config give the same snapshot id and write nothing (``Snapshot.created`` is
    False). Raises :class:`CurateError` (:class:`EmptySnapshotError` when nothing survives) with a
    one-line reason.
    """
    if isinstance(settings, CurateConfig):
        settings = Settings(home=store.path.parent, curate=settings)
    cfg = settings.curate
    if heldout_after is not None:
        cfg = dataclasses.replace(cfg, heldout_after=heldout_after)
    say = ProgressReporter("curate", progress)
    with store.reading() as con:  # a shared store: read-only for the whole read, other readers welcome
        manifest, path, created = _cut(con, store.path, settings, cfg, name, say)
    store.snapshots.record(snapshot_record(manifest, path / "manifest.json"))  # the one write, after the read
    uri = publish_snapshot(settings, manifest["id"])  # a no-op without storage.uri or when already published
    if uri is not None:
        say(f"snapshot {manifest['id']} published to {uri}")
    return dataclasses.replace(_from_manifest(manifest, path, created=created), uri=uri)


def _cut(
    con: duckdb.DuckDBPyConnection,
    db_path: Path,
    settings: Settings,
    cfg: CurateConfig,
    name: str,
    say: ProgressReporter,
) -> tuple[dict[str, Any], Path, bool]:
    """The manifest and directory of the snapshot of ``con``'s PRs, written unless it exists; and whether it was."""
    snapshots_dir = settings.snapshots_dir
    for name in remove_stale_temp_dirs(snapshots_dir):
        say(f"removed {name} from {snapshots_dir}: the temporary folder of a curate killed while writing")
    benchmark = read_benchmark(cfg.benchmark_file) if cfg.benchmark_file is not None else None
    config = config_dict(cfg)
    mirrors = mirror_dirs(con, settings.mirrors_dir)
    inputs = snapshot_inputs(con, cfg, mirrors)
    execution = execution_inputs(settings, mirrors)
    if execution is not None:
        inputs["execution"] = execution
    sid = snapshot_id(inputs, config)
    existing = _existing_manifest(snapshots_dir, sid, say)
    if existing is not None:
        say(f"input and config unchanged: snapshot {sid} already exists")
        return existing, snapshots_dir / sid, False

    total = con.sql("SELECT count(*) FROM pull_requests").fetchall()[0]
    if not total[0]:
        raise CurateError(f"no pull requests in {db_path}: nothing has been ingested yet")

    counter = PromptCounter(cfg.tokenizer, cfg.chars_per_token)
    funnel = FunnelCounter()
    say(f"filtering {total[0]} pull requests", 0, None)
    survivors = select_pull_requests(con, cfg, funnel, benchmark, exact_tokens=counter.exact)
    _warn_incomplete_links(funnel, say)

    heldout = heldout_mask(survivors, heldout_bound(cfg.heldout_after, cfg.base_model_cutoff)[0])
    survivors = apply_stage(
        survivors.with_columns(heldout=heldout), "time_split", pl.lit(leak_reason(survivors, heldout)), funnel
    )
    say(f"reading texts and files of {survivors.height} pull requests", 0, survivors.height)
    notes: Counter[str] = Counter()
    rows = materialize(con, survivors, cfg, counter, mirrors, funnel, notes, say)
    settings = dataclasses.replace(settings, curate=cfg)
    rows, execution_record = validate_rows(rows, settings, mirrors, funnel, say)
    stages = funnel.stages()
    if rows.height == 0:
        raise EmptySnapshotError(
            f"no pull request survived curation ({int(total[0])} in; see the funnel); nothing written", stages
        )
    splits = {
        "train": rows.filter(~pl.col("heldout")).drop("heldout"),
        "heldout": rows.filter(pl.col("heldout")).drop("heldout"),
    }
    for split, frame in splits.items():
        if frame.height == 0:
            say(f"warning: the {split} split is empty (held-out after {cfg.heldout_after}); {_EMPTY_HINT[split]}")
    manifest = {
        "id": sid,
        "name": name,
        "created_at": now_iso(),
        "format_version": FORMAT_VERSION,
        "train_rows": splits["train"].height,
        "heldout_rows": splits["heldout"].height,
        "funnel": funnel_dict(stages),
        "notes": dict(sorted(notes.items())),
        "execution": execution_record,
        "config": config,
        "token_count": "tokenizer" if counter.exact else f"estimate: chars / {cfg.chars_per_token}",
        "inputs": inputs,
        "source_watermarks": source_watermarks(con),
        "heldout_bound": heldout_bound_record(
            rows.filter(~pl.col("heldout")), rows.filter(pl.col("heldout")), cfg.heldout_after, cfg.base_model_cutoff
        ),
    }
    path = write_snapshot(snapshots_dir, splits, manifest)
    say(
        f"snapshot {sid} written: {manifest['train_rows']} train, {manifest['heldout_rows']} held-out",
        rows.height,
        rows.height,
    )
    return manifest, path, True


def snapshot_inputs(con: duckdb.DuckDBPyConnection, cfg: CurateConfig, mirrors: dict[str, Path]) -> dict[str, Any]:
    """Digests of everything a snapshot is cut from besides the config, so that any change gives a new id.

    The store's tables; the benchmark list's bytes; the tokenizer's files (by content, not path: it
    decides which prompts fit the budget); and, when relevant files are retrieved, each repository's
    mirror state (a mirror that appears or fetches new commits changes the code context).
    """
    inputs: dict[str, Any] = input_fingerprint(con)
    if cfg.benchmark_file is not None:
        inputs["benchmark_file"] = hashlib.sha256(Path(cfg.benchmark_file).read_bytes()).hexdigest()
    if cfg.tokenizer is not None:
        inputs["tokenizer"] = tokenizer_digest(cfg.tokenizer)
    if cfg.retrieval == "bm25" and cfg.relevant_files > 0:
        inputs["mirrors"] = mirror_states(mirrors)
    return inputs


def _warn_incomplete_links(funnel: FunnelCounter, say: ProgressReporter) -> None:
    """Say how many PRs stage 1 dropped only because ingest could not ask GraphQL for their links."""
    stage = next((st for st in funnel.stages() if st.stage == "linked_issue"), None)
    count = stage.dropped.get(LINKS_INCOMPLETE, 0) if stage else 0
    if count:
        say(
            f"warning: {count} pull requests left out: ingest ran without a token (or GraphQL access), so their "
            "issues are not linked yet; an ingest with GITHUB_TOKEN set links them"
        )


def select_pull_requests(
    con: duckdb.DuckDBPyConnection,
    cfg: CurateConfig,
    funnel: FunnelCounter,
    benchmark: pl.DataFrame | None = None,
    *,
    exact_tokens: bool = False,
) -> pl.DataFrame:
    """Stages 1–5, 7 and 8 over every PR in the store; one slim row per survivor (no texts).

    PRs stream from DuckDB in ``cfg.batch_rows`` batches; the per-row stages run on each batch and the
    cross-row stages (dedup, decontamination) on the survivors.
    """
    previous = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{cfg.duckdb_memory_mb}MB'")
    try:
        summary = file_summary(changed_files(con))
        # Closed before the finally's query: a batch reader left open by a failing stage makes DuckDB refuse
        # that query, and its error would replace the stage's own.
        with closing(pull_request_batches(con, cfg.batch_rows)) as batches:
            parts = [filter_batch(batch, summary, cfg, funnel, exact_tokens=exact_tokens) for batch in batches]
    finally:
        con.execute(f"SET memory_limit = '{previous}'")
    slim = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
    if slim.height == 0:
        return slim
    slim = apply_stage(slim, "dedup", pl.lit(dedup_reason(slim)), funnel)
    return apply_stage(
        slim, "decontamination", pl.lit(contamination_reason(slim, benchmark, cfg.exclude_repos)), funnel
    )


def filter_batch(
    batch: pl.DataFrame, summary: pl.DataFrame, cfg: CurateConfig, funnel: FunnelCounter, *, exact_tokens: bool
) -> pl.DataFrame:
    """Stages 1–5 on one batch of PR rows (from :func:`.source.pull_request_batches`); returns slim survivors."""
    frame = apply_stage(batch, "linked_issue", linked_issue_reason(cfg), funnel)
    frame = apply_stage(frame, "bots", bot_reason(cfg), funnel)
    frame = split_patches(with_file_summary(frame, summary))
    frame = apply_stage(frame, "code_only", code_only_reason(), funnel)
    size_cfg = dataclasses.replace(cfg, chars_per_token=_GUARD_CHARS_PER_TOKEN) if exact_tokens else cfg
    frame = apply_stage(frame, "size", size_reason(size_cfg), funnel)
    slim = frame.with_columns(
        code_hash=patch_hash_expr(pl.col("oracle_patch")),
        problem_hash=text_hash_expr(pl.col("problem_statement")),
    ).select(_SLIM)
    return _detached(slim)


def materialize(
    con: duckdb.DuckDBPyConnection,
    survivors: pl.DataFrame,
    cfg: CurateConfig,
    counter: PromptCounter,
    mirrors: dict[str, Path],
    funnel: FunnelCounter,
    notes: Counter[str],
    say: ProgressReporter,
) -> pl.DataFrame:
    """The snapshot rows of ``survivors``: texts, code context (changed + relevant files), oracle contents.

    Drops (stage ``prompt_tokens``) the PRs whose rendered prompt exceeds the budget; records in
    ``notes`` the PRs that got no relevant files because their mirror could not be read.
    """
    if survivors.height == 0:
        funnel.record("prompt_tokens", 0, {})
        return survivors
    keys = survivors.select("repo", "pr_number")
    texts = split_patches(survivor_texts(con, keys))
    files = (
        changed_files(con)
        .join(keys, on=["repo", "pr_number"], how="semi")
        .filter(file_kind_expr(pl.col("path")) == CODE)
        .sort("repo", "pr_number", "path")
    )
    shas = (
        files.get_column("old_blob_sha").drop_nulls().to_list()
        + files.get_column("new_blob_sha").drop_nulls().to_list()
    )
    contents = {sha: text.replace("\r\n", "\n") for sha, text in blob_texts(con, shas).items()}
    by_pr: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for f in files.iter_rows(named=True):
        by_pr.setdefault((f["repo"], f["pr_number"]), []).append(f)
    ranker = (
        LlmRanker(cfg.ranker_url, cfg.ranker_model, cfg.ranker_timeout_s)
        if cfg.ranker_url and cfg.ranker_model
        else None
    )
    finder = RelevantFiles(mirrors, cfg.max_candidate_bytes, ranker)
    k = cfg.relevant_files if cfg.retrieval == "bm25" else 0

    wanted = texts.select("repo", "pr_number", "problem_statement", "hints", "oracle_patch", "test_patch")
    frame = survivors.join(wanted, on=["repo", "pr_number"], how="left").sort("repo", "base_commit", "pr_number")
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for i, row in enumerate(frame.iter_rows(named=True)):
        if i and i % 200 == 0:
            say(f"{i}/{frame.height} pull requests", i, frame.height)
        context: dict[str, str] = {}
        oracle: dict[str, str] = {}
        for f in by_pr.get((row["repo"], row["pr_number"]), []):
            if f["status"] != "A":
                context[f["path"]] = contents.get(f["old_blob_sha"], "")
            oracle[f["path"]] = "" if f["status"] == "D" else contents.get(f["new_blob_sha"], "")
        issue = row["problem_statement"] or ""
        if counter.count(issue, context) > cfg.max_prompt_tokens:
            dropped["prompt_over_budget"] += 1
            continue
        extra: dict[str, str] = {}
        if k:

            def fits(more: dict[str, str], issue: str = issue, context: dict[str, str] = context) -> bool:
                return counter.count(issue, {**context, **more}) <= cfg.max_prompt_tokens

            try:
                extra = finder.find(row["repo"], row["base_commit"], issue, set(oracle), k, fits)
            except GitError:
                notes["relevant_files_unavailable"] += 1
        notes["relevant_files_added"] += len(extra)
        full = {**context, **extra}
        out.append({
            "instance_id": f"{row['repo'].replace('/', '__')}-{row['pr_number']}",
            "repo": row["repo"],
            "pr_number": row["pr_number"],
            "issue_numbers": row["issue_numbers"],
            "problem_statement": issue,
            "hints": row["hints"] or "",
            "code_context": [{"path": p, "content": full[p]} for p in sorted(full)],
            "oracle_new_content": [{"path": p, "content": oracle[p]} for p in sorted(oracle)],
            "oracle_patch": row["oracle_patch"] or "",
            "test_patch": row["test_patch"] or "",
            "base_commit": row["base_commit"],
            "created_at": row["created_at"],
            "merged_at": row["merged_at"],
            "languages": row["languages"],
            "heldout": row["heldout"],
        })  # fmt: skip
    funnel.record("prompt_tokens", frame.height, dict(dropped))
    if finder.ranker_errors:
        notes["ranker_errors"] += len(finder.ranker_errors)
    if not out:
        return pl.DataFrame()
    return pl.DataFrame(out).sort("repo", "pr_number")


def config_dict(cfg: CurateConfig) -> dict[str, Any]:
    """The settings that decide a snapshot's content, JSON-friendly (``batch_rows`` only shapes memory)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name in ("batch_rows", "duckdb_memory_mb"):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[field.name] = value
    return out


def _detached(frame: pl.DataFrame) -> pl.DataFrame:
    # Polars string views share the data buffers of the frame they were cut from, so a few slim rows would
    # keep a whole batch (patches included) alive; one IPC round trip copies out only what the rows use.
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    buffer.seek(0)
    return pl.read_ipc(buffer)


_EMPTY_HINT = {
    "train": "training on this snapshot will have no rows; pick a later --heldout-after",
    "heldout": "evaluation on this snapshot will have no rows; pick an earlier --heldout-after",
}


def _existing_manifest(snapshots_dir: Path, sid: str, say: ProgressReporter) -> dict[str, Any] | None:
    """The manifest of an intact snapshot ``sid``; None when there is none or it is damaged (it is rebuilt)."""
    try:
        manifest = read_manifest(snapshots_dir, sid)
    except SnapshotError as exc:
        if not exc.missing:
            say(f"{exc}; rebuilding it")
        return None  # no snapshot with this id yet, or a leftover that write_snapshot replaces
    lacking = [key for key in CURATED_KEYS if key not in manifest]
    damage = f"manifest.json lacks {', '.join(lacking)}" if lacking else snapshot_damage(snapshots_dir, sid, manifest)
    if damage is not None:
        say(f"snapshot {sid} is damaged ({damage}); rebuilding it")
        return None
    return manifest


def _from_manifest(manifest: dict[str, Any], path: Path, created: bool) -> Snapshot:
    stages = tuple(StageCount(s["stage"], s["entered"], dict(s["dropped"])) for s in manifest.get("funnel", []))
    return Snapshot(
        id=manifest["id"],
        name=manifest["name"],
        path=path,
        train_rows=int(manifest["train_rows"]),
        heldout_rows=int(manifest["heldout_rows"]),
        funnel=stages,
        created=created,
        notes=dict(manifest.get("notes", {})),
        execution=_execution_counts(manifest),
    )


def _execution_counts(manifest: dict[str, Any]) -> dict[str, int] | None:
    record = manifest.get("execution") or {}
    return dict(record["counts"]) if record.get("validated") else None


__all__ = [
    "SPLITS",
    "EmptySnapshotError",
    "Snapshot",
    "curate",
    "filter_batch",
    "render_funnel",
    "select_pull_requests",
    "snapshot_inputs",
]
