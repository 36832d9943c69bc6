"""Curation speed and memory at scale: stages 1–5 and 7–9 over synthetic raw tables of 100k and 1M PRs.

The tables are generated straight into DuckDB (numpy + Polars, inserted through Arrow) with the
shapes ingest writes: per PR a title (~50 chars), a body (~400), a code patch (~0.9 KB) and a test
patch (~0.6 KB), 2–3 changed-file rows, and a linked issue (~450 chars) for 80 % of PRs; blob contents
(~1.5 KB) are shared by the PRs that touch the same module, as in a real repository. Some PRs are
bots, docs-only, version bumps, huge, re-submissions of another PR's patch, or second fixes of one issue.
Content sizes are about half of a typical GitHub PR so that 1M rows fit this 2-core machine's disk and
time budget; every row still goes through every stage.

Measured: rows/s and peak RSS of :func:`select_pull_requests` + the time split (every stage except
retrieval and snapshot writing) at 100k and 1M, the 1M/100k time ratio, and the baseline — the
same filters as a plain Python loop over rows — on the 100k set in the same run. Both sides end with
the time split, and the speed ratio is printed only when they kept exactly the same pull requests
(compared by repo and number, not by count). Retrieval (BM25 over the base commit) is timed per PR on
the sample world.

Usage: ``python benchmarks/curate.py [--sizes 100000,1000000] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import psutil

from swerl_core.config.curate import CurateConfig
from swerl_core.curate.funnel import FunnelCounter, render_funnel
from swerl_core.curate.patches import patch_fingerprint_text
from swerl_core.curate.pipeline import select_pull_requests
from swerl_core.curate.split import heldout_mask, leak_reason
from swerl_core.curate.tokens import BASE_PROMPT_CHARS, CHAT_TEMPLATE_MARGIN, FILE_OVERHEAD_CHARS
from swerl_core.file_kinds import CODE, TEST, file_kind
from swerl_core.store import Store

CHUNK = 100_000
T0 = datetime(2023, 1, 1, tzinfo=UTC)
CUT = T0 + timedelta(days=600)
_VOCABULARY = (
    "the parser fails when input is empty and returns none instead of a list value error raised on unicode path "
    "config option flag default timeout retry cache key missing wrong result"
)
WORDS = np.array(_VOCABULARY.split(" "))


def words(rng: np.random.Generator, n: int, k: int) -> pl.Series:
    """n random sentences of k words."""
    picks = WORDS[rng.integers(0, len(WORDS), size=(n, k))]
    return pl.Series([" ".join(row) for row in picks])


def generate(path: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` synthetic PRs (with files, blobs, issues, links) into a new Store at ``path``."""
    with Store.open(path) as store:
        con = store.connection
        con.execute("INSERT INTO repos SELECT 'org/repo' || i, i, 'x', 'main', NULL, NULL, now(), now() "
                    "FROM range(200) t(i)")  # fmt: skip
        blob_body = "    value = compute(value)\n" * 55  # ~1.5 KB of module text per blob
        con.execute(f"""INSERT INTO blobs SELECT md5('old' || i) || 'aaaaaaaa', 1500, false, false, false,
                        'def f{{i}}():\n' || '{blob_body}' FROM range(1000) t(i)""")  # fmt: skip
        con.execute(f"""INSERT INTO blobs SELECT md5('new' || i) || 'aaaaaaaa', 1500, false, false, false,
                        'def g{{i}}():\n' || '{blob_body}' FROM range(1000) t(i)""")  # fmt: skip
        for start in range(0, n, CHUNK):
            _chunk(con, np.random.default_rng(seed + start), start, min(CHUNK, n - start))


def _chunk(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, start: int, m: int) -> None:
    idx = np.arange(start, start + m)
    repo = pl.Series([f"org/repo{i % 200}" for i in idx])
    number = pl.Series((idx // 200 + 1).astype(np.int64))
    module = idx % 1000
    kind = rng.random(m)  # < .05 bot, < .10 docs only, < .12 version bump, < .13 huge; else a fix
    dup = rng.random(m) < 0.02
    lines = "\n".join(
        f"-    old_line_{k} = compute(value)\n+    new_line_{k} = compute(value, strict=True)" for k in range(8)
    )
    base_patch = (pl.lit("diff --git a/src/pkg/mod") + pl.col("module").cast(pl.String) + ".py b/src/pkg/mod"
                  + pl.col("module").cast(pl.String) + ".py\nindex 1111111..2222222 100644\n--- a/src/pkg/mod"
                  + pl.col("module").cast(pl.String) + ".py\n+++ b/src/pkg/mod" + pl.col("module").cast(pl.String)
                  + ".py\n@@ -10,20 +10,20 @@ def f():\n     value = 1\n" + lines + "\n+    fix_id = "
                  + pl.col("uid").cast(pl.String) + "\n")  # fmt: skip
    test_patch = (pl.lit("diff --git a/tests/test_mod") + pl.col("module").cast(pl.String) + ".py b/tests/test_mod"
                  + pl.col("module").cast(pl.String) + ".py\n--- a/tests/test_mod.py\n+++ b/tests/test_mod"
                  + pl.col("module").cast(pl.String) + ".py\n@@ -1,3 +1,12 @@\n"
                  + pl.lit("+    assert parse('') == []\n" * 20))  # fmt: skip
    frame = pl.DataFrame({"repo": repo, "number": number, "module": module, "kind": kind,
                          "uid": np.where(dup & (idx >= 1000), idx - 1000, idx)})  # fmt: skip
    frame = frame.with_columns(code_patch=base_patch, test_patch=test_patch).with_columns(
        code_patch=pl.when(pl.col("kind") < 0.10).then(pl.lit("")).when(pl.col("kind") < 0.12).then(
            pl.lit('diff --git a/src/pkg/__init__.py b/src/pkg/__init__.py\n--- a/src/pkg/__init__.py\n'
                   '+++ b/src/pkg/__init__.py\n@@ -1 +1 @@\n-__version__ = "1.0"\n+__version__ = "1.1"\n'))
        .when(pl.col("kind") < 0.13).then(pl.col("code_patch").repeat_by(200).list.join(""))
        .otherwise(pl.col("code_patch")),
        test_patch=pl.when(pl.col("kind") < 0.12).then(pl.lit("")).otherwise(pl.col("test_patch")),
    )  # fmt: skip
    merged = [T0 + timedelta(minutes=int(i)) for i in (idx * 1.3)]
    bot = kind < 0.05
    prs = frame.select(
        "repo", "number",
        github_id=pl.lit(None, pl.Int64),
        title=words(rng, m, 8),
        body=words(rng, m, 60),
        author_login=pl.Series(np.where(bot, "dependabot[bot]", "dev" + (idx % 5000).astype(str).astype(object))),
        author_type=pl.Series(np.where(bot, "Bot", "User")),
        author_is_bot=pl.Series(bot),
        labels=pl.lit([], pl.List(pl.String)),
        created_at=pl.Series(merged), updated_at=pl.Series(merged), closed_at=pl.Series(merged),
        merged_at=pl.Series(merged),
        base_ref=pl.lit("main"), head_ref=pl.lit("fix"), base_sha=pl.lit("b" * 40), head_sha=pl.lit("h" * 40),
        merge_commit_sha=pl.lit(None, pl.String), merge_base_sha=pl.lit("b" * 40),
        first_commit_at=pl.Series(merged), commit_messages=pl.lit([], pl.List(pl.String)),
        has_linked_issue=pl.lit(True), n_files=pl.lit(2, pl.Int32),
        code_patch="code_patch", test_patch="test_patch", run_id=pl.lit("bench"), ingested_at=pl.Series(merged),
        links_missing_source=pl.lit(None, pl.String),
    )  # fmt: skip
    docs = kind < 0.10
    files = pl.DataFrame({
        "repo": pl.concat([repo, repo]), "pr_number": pl.concat([number, number]).cast(pl.Int32),
        "path": pl.Series(np.concatenate([
            np.where(docs & ~(kind < 0.05), "docs/guide.md", np.where(kind < 0.12, "src/pkg/__init__.py",
                     "src/pkg/mod" + module.astype(str).astype(object) + ".py")),
            np.where(kind < 0.12, "README.md", "tests/test_mod" + module.astype(str).astype(object) + ".py")])),
        "old_path": pl.Series([None] * (2 * m), dtype=pl.String),
        "old_blob_sha": pl.Series([hashlib.md5(f"old{i}".encode()).hexdigest() + "aaaaaaaa" for i in module] * 2),
        "new_blob_sha": pl.Series([hashlib.md5(f"new{i}".encode()).hexdigest() + "aaaaaaaa" for i in module] * 2),
    }).select(
        "repo", "pr_number", "path", "old_path", status=pl.lit("M"), is_binary=pl.lit(False), is_test=pl.lit(False),
        old_blob_sha="old_blob_sha", new_blob_sha="new_blob_sha", old_size=pl.lit(1500, pl.Int64),
        new_size=pl.lit(1500, pl.Int64), additions=pl.lit(9, pl.Int32), deletions=pl.lit(8, pl.Int32),
    )  # fmt: skip
    linked = rng.random(m) < 0.8
    issue_no = (number + 1_000_000).to_numpy()
    backport = rng.random(m) < 0.01  # a second PR fixing the issue of the PR 200 rows earlier (same repo)
    issue_no = np.where(backport & (idx >= 200), issue_no - 1, issue_no)
    links = (
        pl.DataFrame({"repo": repo, "pr_number": number.cast(pl.Int32), "issue_number": pl.Series(issue_no)})
        .select("repo", "pr_number", issue_repo="repo", issue_number=pl.col("issue_number").cast(pl.Int32),
                kind=pl.lit("issue"), sources=pl.lit(["body"], pl.List(pl.String)))
        .filter(pl.Series(linked))
    )  # fmt: skip
    issues = links.select(
        "repo", number="issue_number", github_id=pl.lit(None, pl.Int64), title=words(rng, m, 8).filter(linked),
        body=words(rng, m, 70).filter(linked), author_login=pl.lit("u"), author_type=pl.lit("User"),
        state=pl.lit("closed"), state_reason=pl.lit(None, pl.String), labels=pl.lit([], pl.List(pl.String)),
        comments_count=pl.lit(0, pl.Int32), created_at=pl.lit(T0), updated_at=pl.lit(T0), closed_at=pl.lit(T0),
    ).unique(["repo", "number"])  # fmt: skip
    for table, df in (("pull_requests", prs), ("pr_files", files), ("pr_issue_links", links), ("issues", issues)):
        arrow = df.to_arrow()
        con.register("_bench", arrow)
        conflict = " ON CONFLICT DO NOTHING" if table == "issues" else ""
        con.execute(f"INSERT INTO {table} SELECT * FROM _bench{conflict}")
        con.unregister("_bench")


class PeakRss:
    """Samples this process's RSS every 50 ms in a thread; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def run_stages(path: Path, cfg: CurateConfig) -> tuple[set[tuple[str, int]], FunnelCounter]:
    """Every stage except retrieval: select (1–5, 7, 8) and the time split (9); returns the survivors."""
    funnel = FunnelCounter()
    with Store.open(path) as store:
        slim = select_pull_requests(store.connection, cfg, funnel)
        held = heldout_mask(slim, CUT)
        leaks = leak_reason(slim, held)
    kept = slim.filter(leaks.is_null()).select("repo", "pr_number")
    return set(kept.iter_rows()), funnel


def prompt_tokens(chars: int, chars_per_token: float) -> int:
    """The prompt-size estimate curate applies (chars per token, plus the chat template's margin)."""
    return math.ceil(chars / chars_per_token) + CHAT_TEMPLATE_MARGIN


_BOT = re.compile(r"(?i)\b(dependabot|renovate|bump|automerge)\b")
_VERSION = re.compile(r"^[+-][ \t]*[\"']?(__version__|version|VERSION|Version)[\"']?[ \t]*[:=]")


def baseline(path: Path, cfg: CurateConfig) -> set[tuple[str, int]]:
    """The same filters and time split as a plain Python loop over rows (rows fetched from DuckDB as tuples)."""
    with Store.open(path) as store:
        con = store.connection
        files: dict[tuple[str, int], list[str]] = {}
        context: dict[tuple[str, int], list[int]] = {}  # the prompt's code files: path + content chars at base
        for repo, number, fpath, status, old_chars in con.sql(
            "SELECT f.repo, f.pr_number, f.path, f.status, coalesce(length(b.content), 0) FROM pr_files f "
            "LEFT JOIN blobs b ON b.sha = f.old_blob_sha"
        ).fetchall():
            files.setdefault((repo, number), []).append(fpath)
            if file_kind(fpath) == CODE and status != "A":
                context.setdefault((repo, number), []).append(len(fpath) + old_chars)
        issues: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for repo, number, issue, text in con.sql(
            "SELECT l.repo, l.pr_number, l.issue_number, i.title || chr(10) || chr(10) || i.body FROM pr_issue_links l "
            "JOIN issues i ON i.repo = l.repo AND i.number = l.issue_number WHERE l.kind = 'issue'"
        ).fetchall():
            issues.setdefault((repo, number), []).append((issue, text))
        cursor = con.execute(
            "SELECT repo, number, author_login, author_type, author_is_bot, title, body, merged_at, "
            "code_patch || test_patch FROM pull_requests ORDER BY repo, number"
        )
        kept: list[tuple] = []
        while batch := cursor.fetchmany(20_000):
            for repo, number, login, atype, is_bot, title, body, merged, patch in batch:
                linked = issues.get((repo, number))
                if not linked:
                    continue
                if (
                    atype == "Bot"
                    or is_bot
                    or (login or "").endswith("[bot]")
                    or _BOT.search(f"{login}\n{title}\n{body}")
                ):
                    continue
                kinds = [file_kind(p) for p in files.get((repo, number), [])]
                n_code = kinds.count(CODE)
                if n_code == 0:
                    continue
                code, test = [], []
                for section in re.split(r"(?m)^(?=diff --git )", patch):
                    if not section.startswith("diff --git "):
                        continue
                    m = re.search(r"(?m)^\+\+\+ b/(.+)$", section)
                    k = file_kind(m.group(1) if m else section.split(" b/", 1)[-1].split("\n")[0])
                    (code if k == CODE else test if k == TEST else []).append(section)
                oracle = "".join(code)
                changed = [ln for ln in oracle.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++ ", "--- "))]
                if not changed or all(_VERSION.match(ln) for ln in changed):
                    continue
                text = "\n\n".join(t for _, t in sorted(linked)).strip()
                if not (cfg.min_code_files <= n_code <= cfg.max_code_files) or len(changed) > cfg.max_patch_lines:
                    continue
                sizes = context.get((repo, number), [])
                chars = BASE_PROMPT_CHARS + len(text) + sum(sizes) + len(sizes) * FILE_OVERHEAD_CHARS
                if len(text) < cfg.min_issue_chars or prompt_tokens(chars, cfg.chars_per_token) > cfg.max_prompt_tokens:
                    continue
                digest = hashlib.blake2b(patch_fingerprint_text(oracle).encode(), digest_size=16).hexdigest()
                kept.append((merged, repo, number, digest, tuple(i for i, _ in linked)))
        kept.sort()
        # Dedup as curate judges it: first the repeated patches among all rows, then, among the rest, an
        # issue already fixed by an earlier PR.
        seen_patch: set[str] = set()
        unique_patch = []
        for row in kept:
            if row[3] not in seen_patch:
                seen_patch.add(row[3])
                unique_patch.append(row)
        seen_issue: set[tuple[str, int]] = set()
        survivors: list[tuple[datetime, str, int, tuple[int, ...]]] = []
        for merged, repo, number, _, linked_issues in unique_patch:
            if not any((repo, i) in seen_issue for i in linked_issues):
                survivors.append((merged, repo, number, linked_issues))
            seen_issue.update((repo, i) for i in linked_issues)
    # The time split: a held-out PR (merged after the cut) sharing an issue with a training PR is dropped.
    train_issues = {(repo, i) for merged, repo, _, issues in survivors if merged <= CUT for i in issues}
    return {
        (repo, number)
        for merged, repo, number, issues in survivors
        if merged <= CUT or not any((repo, i) in train_issues for i in issues)
    }


def retrieval_per_pr() -> tuple[float, int]:
    """Seconds per PR of BM25 retrieval on the sample world (ingested through the fake GitHub server)."""
    from swerl_core import ingest
    from swerl_core.config import Secret, load_settings
    from swerl_core.curate.pipeline import curate
    from swerl_core.demo.github_server import FakeGitHub
    from swerl_core.demo.world import build_world

    root = Path(tempfile.mkdtemp(prefix="swerl-bench-world-"))
    try:
        world = build_world(root / "world")
        with FakeGitHub(world, token="bench-token") as fake:
            settings = load_settings(env={}, overrides={"home": root / "home", "github.api_url": fake.url,
                                                        "github.local_clones": True,
                                                        "github.seconds_between_requests": 0})  # fmt: skip
            ingest.run(settings, ingest.IngestRequest(repos=("acme/textkit", "other/lib"), token=Secret("bench-token")))
        timings = {}
        for mode in ("none", "bm25"):
            cfg = CurateConfig(retrieval=mode)  # type: ignore[arg-type]
            shutil.rmtree(root / "home" / "snapshots", ignore_errors=True)
            with Store.open(settings.db_path) as store:
                store.connection.execute("DELETE FROM snapshots")
                started = time.perf_counter()
                snap = curate(store, cfg)
                timings[mode] = time.perf_counter() - started
        rows = snap.train_rows + snap.heldout_rows
        return (timings["bm25"] - timings["none"]) / rows, rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(db: Path) -> int:
    """Run every stage except retrieval on ``db`` and print one JSON line: seconds, peak RSS, kept, funnel."""
    gc.collect()
    with PeakRss() as rss:
        started = time.perf_counter()
        kept, funnel = run_stages(db, CurateConfig())
        elapsed = time.perf_counter() - started
    # The survivors go to a file next to the database, for the comparison with the baseline.
    pl.DataFrame(sorted(kept), schema=["repo", "number"], orient="row").write_parquet(_kept_path(db))
    report = {"seconds": elapsed, "peak_rss": rss.peak, "kept": len(kept), "funnel": render_funnel(funnel.stages())}
    print(json.dumps(report))
    return 0


def _kept_path(db: Path) -> Path:
    return db.with_suffix(".kept.parquet")


def compare(db: Path, base_kept: set[tuple[str, int]]) -> str | None:
    """Why the Polars stages and the loop kept different pull requests, or None when they kept the same."""
    polars_kept = set(pl.read_parquet(_kept_path(db)).iter_rows())
    if polars_kept == base_kept:
        return None
    only_polars, only_loop = sorted(polars_kept - base_kept), sorted(base_kept - polars_kept)
    return (
        f"{len(only_polars)} kept only by polars (e.g. {only_polars[:3]}), {len(only_loop)} only by the loop "
        f"(e.g. {only_loop[:3]})"
    )


def main() -> int:
    """Run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: one size, in a fresh process
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure)
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="swerl-bench-curate-"))
    cfg = CurateConfig()
    results: dict[int, float] = {}
    print(f"curate benchmark on {psutil.cpu_count()} CPUs; workdir {workdir}")
    try:
        for n in sizes:
            db = workdir / f"prs{n}.duckdb"
            if not db.exists():
                started = time.perf_counter()
                generate(db, n)
                print(f"  generated {n:>9,} PRs in {time.perf_counter() - started:6.1f} s "
                      f"({db.stat().st_size / 1e9:.2f} GB on disk)")  # fmt: skip
            # A fresh process per size, so the peak RSS is curation's alone (not the generator's).
            out = subprocess.run([sys.executable, __file__, "--measure", str(db)], capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
            report = json.loads(out.strip().splitlines()[-1])
            elapsed = results[n] = report["seconds"]
            print(f"polars stages, {n:>9,} PRs: {elapsed:7.2f} s  {n / elapsed:>9,.0f} rows/s  "
                  f"peak RSS {report['peak_rss'] / 2**30:.2f} GiB  kept {report['kept']:,}")  # fmt: skip
            if n == sizes[0]:
                print(report["funnel"])
                started = time.perf_counter()
                base_kept = baseline(db, cfg)
                base = time.perf_counter() - started
                print(f"python loop,   {n:>9,} PRs: {base:7.2f} s  {n / base:>9,.0f} rows/s  "
                      f"kept {len(base_kept):,}")  # fmt: skip
                mismatch = compare(db, base_kept)
                if mismatch is not None:
                    print(f"the two sides kept different pull requests: {mismatch}; no speed ratio")
                    return 1
                print(f"same work: both kept the same {len(base_kept):,} pull requests; "
                      f"polars is {base / elapsed:.1f}× faster")  # fmt: skip
        if len(sizes) > 1:
            print(f"time ratio {sizes[-1]:,}/{sizes[0]:,}: {results[sizes[-1]] / results[sizes[0]]:.1f} "
                  f"(linear = {sizes[-1] / sizes[0]:.0f})")  # fmt: skip
        per_pr, rows = retrieval_per_pr()
        print(f"retrieval (BM25 over the base commit) on the sample world: {per_pr * 1000:.1f} ms per PR ({rows} PRs)")
        max_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f"largest RSS of a measuring process (getrusage): {max_rss:.2f} GiB")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
