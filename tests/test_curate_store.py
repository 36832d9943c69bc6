"""Curation against a real DuckDB file created by :class:`Store`, with rows inserted by SQL."""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from swerl_core.config.curate import CurateConfig
from swerl_core.curate import CurateError
from swerl_core.curate.pipeline import EmptySnapshotError, curate
from swerl_core.progress import Progress
from swerl_core.store import Store

REPO = "acme/widgets"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
CFG = CurateConfig(retrieval="none")
AUTHOR = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
ISSUE = "Parser crashes on empty input\n\nCalling parse('') raises IndexError instead of returning []."


def sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def unified(path: str, old: str | None, new: str | None) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


class World:
    """Writes raw rows the way ingest would, through plain SQL on a Store-created database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.store = Store.open(home / "swerl.duckdb")
        self.con = self.store.connection
        self.con.execute("INSERT INTO repos VALUES (?, 1, 'file:///nowhere', 'main', NULL, NULL, now(), now())", [REPO])

    def blob(self, content: str | None, **flags: bool) -> str | None:
        if content is None:
            return None
        key = sha(content + json.dumps(flags, sort_keys=True))
        self.con.execute(
            "INSERT INTO blobs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [key, len(content), flags.get("binary", False), flags.get("invalid_utf8", False), False, content],
        )
        return key

    def issue(self, number: int, text: str = ISSUE) -> None:
        title, _, body = text.partition("\n\n")
        self.con.execute(
            "INSERT INTO issues VALUES (?, ?, NULL, ?, ?, 'u', 'User', 'closed', NULL, [], 0, ?, ?, ?)",
            [REPO, number, title, body, T0, T0, T0],
        )

    def pr(
        self,
        number: int,
        files: list[tuple[str, str | None, str | None]],
        *,
        issue: int | None = None,
        issue_text: str = ISSUE,
        merged_at: datetime | None = None,
        author: str = "alice",
        store_files: bool = True,
        links_missing: str | None = None,
        patch: str | None = None,
        **blob_flags: bool,
    ) -> None:
        """Insert PR ``number`` changing ``files`` (path, old, new); ``patch`` replaces the one difflib writes."""
        merged = merged_at or T0 + timedelta(days=number)
        patch = "".join(unified(p, old, new) for p, old, new in files) if patch is None else patch
        self.con.execute(
            """INSERT INTO pull_requests VALUES (?, ?, NULL, ?, '', ?, 'User', false, [], ?, ?, ?, ?, 'main', 'fix',
               ?, ?, NULL, ?, NULL, [], ?, ?, ?, '', 'run', now(), ?)""",
            [REPO, number, f"Fix #{issue}" if issue else "Tidy up", author, merged, merged, merged, merged,
             "b" * 40, "h" * 40, "b" * 40, issue is not None, len(files), patch, links_missing],
        )  # fmt: skip
        if store_files:
            for path, old, new in files:
                status = "A" if old is None else "D" if new is None else "M"
                self.con.execute(
                    "INSERT INTO pr_files VALUES (?, ?, ?, NULL, ?, false, false, ?, ?, NULL, NULL, 1, 1)",
                    [REPO, number, path, status, self.blob(old, **blob_flags), self.blob(new, **blob_flags)],
                )
        if issue is not None:
            self.issue(issue, issue_text)
            self.con.execute(
                "INSERT INTO pr_issue_links VALUES (?, ?, ?, ?, 'issue', ['body'])", [REPO, number, REPO, issue]
            )

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World(tmp_path)
    yield w
    w.close()


def fix(n: int) -> list[tuple[str, str | None, str | None]]:
    old = f"def parse(text):\n    return text.split(',')[{n}]\n"
    return [(f"src/widgets/mod{n}.py", old, old.replace("return", "return [] if not text else")),
            (f"tests/test_mod{n}.py", "", f"def test_{n}():\n    assert True\n")]  # fmt: skip


def rows(snapshot_path: Path, split: str) -> list[dict[str, Any]]:
    return pl.read_parquet(snapshot_path / f"{split}.parquet").to_dicts()


def test_snapshot_has_both_splits_loads_with_datasets_and_is_recorded(world: World) -> None:
    for n in range(1, 5):
        world.pr(n, fix(n), issue=100 + n)
    snap = curate(world.store, CFG, heldout_after=T0 + timedelta(days=2, hours=12))
    assert (snap.train_rows, snap.heldout_rows, snap.created) == (2, 2, True)
    from datasets import load_dataset

    data = load_dataset("parquet", data_files={s: str(snap.path / f"{s}.parquet") for s in ("train", "heldout")})
    first = data["train"][0]
    assert first["instance_id"] == "acme__widgets-1" and first["issue_numbers"] == [101]
    assert [f["path"] for f in first["code_context"]] == ["src/widgets/mod1.py"]
    assert "return [] if not text" in first["oracle_new_content"][0]["content"]
    assert first["test_patch"].startswith("diff --git a/tests/test_mod1.py")
    assert "tests/" not in first["oracle_patch"] and first["languages"] == ["Python"]
    manifest = json.loads(snap.manifest_path.read_text())
    assert manifest["train_rows"] == 2 and manifest["funnel"][0]["stage"] == "linked_issue"
    recorded = world.con.sql("SELECT id, train_rows, heldout_rows FROM snapshots").fetchall()
    assert recorded == [(snap.id, 2, 2)]


def test_unchanged_input_gives_the_same_id_and_writes_nothing(world: World) -> None:
    world.pr(1, fix(1), issue=101)
    first = curate(world.store, CFG)
    again = curate(world.store, CFG)
    assert (again.id, again.created) == (first.id, False)
    assert world.con.sql("SELECT count(*) FROM snapshots").fetchall() == [(1,)]
    world.pr(2, fix(2), issue=102)
    changed = curate(world.store, CFG)
    assert changed.id != first.id and changed.created and changed.train_rows == 2


def test_empty_database_is_a_clear_error(world: World) -> None:
    with pytest.raises(CurateError, match="no pull requests .*nothing has been ingested yet"):
        curate(world.store, CFG)


def test_nothing_surviving_is_an_error_and_leaves_no_snapshot(world: World) -> None:
    world.pr(1, fix(1))  # no linked issue
    with pytest.raises(EmptySnapshotError, match="no pull request survived") as caught:
        curate(world.store, CFG)
    assert caught.value.funnel[0].dropped == {"no_linked_issue": 1}
    assert not list((world.home / "snapshots").glob("*"))
    assert world.con.sql("SELECT count(*) FROM snapshots").fetchall() == [(0,)]


def test_pull_requests_linked_without_graphql_are_dropped_as_incomplete_and_said(world: World) -> None:
    """A PR ingest could not link fully is not silently "no linked issue": the funnel and a warning say why."""
    world.pr(1, fix(1), issue=101)
    world.pr(2, fix(2), issue=102, links_missing="graphql")  # a keyword link: kept
    world.pr(3, fix(3), links_missing="graphql")
    world.pr(4, fix(4))
    said: list[str] = []
    snap = curate(world.store, CFG, progress=lambda event: said.append(event.message))
    assert snap.funnel[0].dropped == {"links_incomplete_without_graphql": 1, "no_linked_issue": 1}
    assert snap.train_rows + snap.heldout_rows == 2
    warned = [line for line in said if "1 pull requests left out" in line]
    assert len(warned) == 1 and "GITHUB_TOKEN" in warned[0], said


def test_bad_inputs_are_dropped_with_reasons_or_kept_faithfully(world: World) -> None:
    world.pr(1, fix(1), issue=101, issue_text="Parse of an empty string fails")  # empty (null) issue body
    world.pr(2, fix(2), issue=102, issue_text="Huge log\n\n" + "x" * 1_000_000)
    crlf_old = "def parse(text):\r\n    return text\r\n"
    world.pr(3, [("src/widgets/crlf.py", crlf_old, crlf_old.replace("text\r\n", "text or []\r\n"))], issue=103)
    world.pr(4, fix(4), issue=104, invalid_utf8=True)
    world.pr(5, fix(5), issue=105, store_files=False)
    world.pr(6, fix(6), issue=106, author="dependabot[bot]")
    snap = curate(world.store, CFG)
    kept = {r["pr_number"]: r for r in rows(snap.path, "train")}
    assert sorted(kept) == [1, 3]
    assert kept[1]["problem_statement"] == "Parse of an empty string fails"
    assert kept[3]["code_context"][0]["content"] == "def parse(text):\n    return text\n"
    assert kept[3]["oracle_new_content"][0]["content"] == "def parse(text):\n    return text or []\n"
    dropped = {s.stage: s.dropped for s in snap.funnel}
    assert dropped["bots"] == {"bot_author": 1}
    assert dropped["code_only"] == {"non_utf8_code_file": 1, "files_missing_from_store": 1}
    assert dropped["size"] == {"prompt_over_budget": 1}


def test_vanished_blob_and_same_patch_twice(world: World) -> None:
    world.pr(1, fix(1), issue=101)
    world.pr(2, fix(1), issue=102)  # the same change again, merged later (a re-submission)
    world.pr(3, fix(3), issue=103)
    world.con.execute("DELETE FROM blobs WHERE content LIKE '%[3]%' AND content NOT LIKE '%if not text%'")
    snap = curate(world.store, CFG)
    assert [r["pr_number"] for r in rows(snap.path, "train")] == [1]
    dropped = {s.stage: s.dropped for s in snap.funnel}
    assert dropped["dedup"] == {"duplicate_patch": 1}
    assert dropped["code_only"] == {"code_file_missing_from_store": 1}


def test_benchmark_matches_are_counted_and_missing_columns_fail_before_writing(world: World, tmp_path: Path) -> None:
    world.pr(1, fix(1), issue=101)
    world.pr(2, fix(2), issue=102)
    good = tmp_path / "bench.jsonl"
    good.write_text(json.dumps({"repo": REPO, "instance_id": "acme__widgets-2", "patch": ""}) + "\n")
    snap = curate(world.store, CurateConfig(retrieval="none", benchmark_file=good))
    assert {s.stage: s.dropped for s in snap.funnel}["decontamination"] == {"benchmark_instance": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instance_id": "x__y-1", "problem_statement": "p"}) + "\n")
    with pytest.raises(CurateError, match=r"lacks column\(s\): repo"):
        curate(world.store, CurateConfig(retrieval="none", benchmark_file=bad))


def test_failed_write_leaves_no_half_snapshot(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import swerl_core.curate.snapshot as snapshot_module

    world.pr(1, fix(1), issue=101)
    calls = {"n": 0}
    real = snapshot_module.pq.write_table

    def crash_on_second(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(snapshot_module.pq, "write_table", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        curate(world.store, CFG)
    assert not list((world.home / "snapshots").iterdir())
    monkeypatch.setattr(snapshot_module.pq, "write_table", real)
    snap = curate(world.store, CFG)
    assert snap.created and (snap.path / "train.parquet").exists()


SLOW_WRITER = """
import os, sys
from pathlib import Path
import polars as pl, pyarrow as pa
from swerl_core.curate.snapshot import ROW_SCHEMA, write_snapshot
from swerl_core.demo.sample_snapshot import sample_rows

train, heldout = sample_rows(1, 1)
train = [{**train[0], "problem_statement": os.urandom(1 << 15).hex()} for _ in range(600)]  # ~40 MB: ~1 s to write
splits = {name: pl.from_arrow(pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
          for name, rows in (("train", train), ("heldout", heldout))}
write_snapshot(Path(sys.argv[1]), splits, {"id": "slow", "train_rows": len(train), "heldout_rows": len(heldout)})
"""


def _stopped_mid_write(snapshots_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A process writing snapshot ``slow`` with curate's writer, stopped (SIGSTOP) while its temporary folder exists."""
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(snapshots_dir)])
    deadline = time.monotonic() + 120
    while not (temps := list(snapshots_dir.glob(".tmp-*"))):
        assert child.poll() is None and time.monotonic() < deadline, "the writer ended before it began to write"
        time.sleep(0.001)
    os.kill(child.pid, signal.SIGSTOP)
    assert temps[0].is_dir(), "the writer finished before it could be stopped mid-write: give it more rows"
    return child, temps[0]


def test_a_curate_killed_while_writing_leaves_a_folder_the_next_curate_removes(world: World) -> None:
    from swerl_core.snapshots import snapshot_ids

    world.pr(1, fix(1), issue=101)
    snapshots_dir = world.home / "snapshots"
    child, temp = _stopped_mid_write(snapshots_dir)
    child.kill()
    child.wait()
    assert temp.is_dir() and snapshot_ids(snapshots_dir) == [], "a killed writer's folder is never a snapshot"
    said: list[Progress] = []
    snap = curate(world.store, CFG, progress=said.append)
    assert not temp.exists(), f"{temp.name} is still there after the next curate"
    assert any(f"removed {temp.name}" in p.message and "killed while writing" in p.message for p in said), said
    assert snapshot_ids(snapshots_dir) == [snap.id]


def test_the_folder_of_a_curate_still_writing_is_left_alone_and_becomes_its_snapshot(world: World) -> None:
    from swerl_core.snapshots import snapshot_ids, verify_snapshot

    world.pr(1, fix(1), issue=101)
    snapshots_dir = world.home / "snapshots"
    child, temp = _stopped_mid_write(snapshots_dir)
    try:
        said: list[Progress] = []
        curate(world.store, CFG, progress=said.append)
        assert temp.is_dir(), "the next curate removed the folder of a live writer"
        assert not any("removed" in p.message for p in said), said
    finally:
        os.kill(child.pid, signal.SIGCONT)
        returncode = child.wait(120)
    assert returncode == 0 and not temp.exists()
    assert "slow" in snapshot_ids(snapshots_dir) and verify_snapshot(snapshots_dir, "slow")["train_rows"] == 600


def test_a_different_tokenizer_in_the_same_directory_gives_a_new_snapshot(world: World, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from swerl_core.demo.tiny_model import CHAT_TEMPLATE, build_tokenizer

    tok_dir = tmp_path / "tok"
    build_tokenizer().save_pretrained(tok_dir)  # type: ignore[attr-defined]
    world.pr(1, fix(1), issue=101)
    cfg = CurateConfig(retrieval="none", tokenizer=tok_dir)
    first = curate(world.store, cfg)
    assert curate(world.store, cfg).id == first.id, "the same tokenizer files must give the same snapshot"
    changed = AutoTokenizer.from_pretrained(tok_dir)
    changed.chat_template = CHAT_TEMPLATE.replace("{{ bos_token }}", "")
    changed.save_pretrained(tok_dir)
    second = curate(world.store, cfg)
    assert (second.id != first.id, second.created) == (True, True), "a changed tokenizer was taken as unchanged"


def test_a_mirror_that_appears_or_moves_gives_a_new_snapshot(world: World) -> None:
    from swerl_core.git import mirror_path, run_git

    world.pr(1, fix(1), issue=101)
    cfg = CurateConfig(retrieval="bm25")
    without = curate(world.store, cfg)
    git_dir = mirror_path(world.home / "mirrors", REPO)
    run_git(None, ["init", "--quiet", "--bare", str(git_dir)])
    empty_tree = run_git(git_dir, ["mktree"], input=b"").decode().strip()
    commit = run_git(git_dir, ["commit-tree", empty_tree, "-m", "base"], env=AUTHOR).decode().strip()
    run_git(git_dir, ["update-ref", "refs/heads/main", commit])
    mirrored = curate(world.store, cfg)
    assert (mirrored.id != without.id, mirrored.created) == (True, True), "a new mirror was taken as unchanged"
    assert curate(world.store, cfg).id == mirrored.id, "an unchanged mirror must give the same snapshot"
    run_git(git_dir, ["update-ref", "refs/pull/7/head", commit])
    assert curate(world.store, cfg).id != mirrored.id, "a mirror with new refs was taken as unchanged"


@pytest.mark.slow
def test_exact_token_count_with_a_local_tokenizer(world: World, tmp_path: Path) -> None:
    from swerl_core.demo.tiny_model import build_tokenizer

    tok_dir = tmp_path / "tok"
    build_tokenizer().save_pretrained(tok_dir)  # type: ignore[attr-defined]
    world.pr(1, fix(1), issue=101)
    world.pr(2, fix(2), issue=102, issue_text="Slow parse\n\n" + " ".join(f"word{i}" for i in range(3000)))
    snap = curate(world.store, CurateConfig(retrieval="none", tokenizer=tok_dir, max_prompt_tokens=4000))
    assert [r["pr_number"] for r in rows(snap.path, "train")] == [1]
    assert {s.stage: s.dropped for s in snap.funnel}["prompt_tokens"] == {"prompt_over_budget": 1}
    manifest = json.loads(snap.manifest_path.read_text())
    assert manifest["token_count"] == "tokenizer"


def test_cli_reports_an_empty_database_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from swerl_core.cli import main

    home = tmp_path / "home"
    home.mkdir()
    Store.open(home / "swerl.duckdb").close()
    assert main(["--home", str(home), "curate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("swerl curate: no pull requests in") and len(err) == 1


def test_cli_curate_on_a_missing_home_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from swerl_core.cli import main

    assert main(["--home", str(tmp_path / "home"), "curate"]) == 1
    assert f"no SWERL_HOME at {tmp_path / 'home'}" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()
    (tmp_path / "home").mkdir()
    assert main(["--home", str(tmp_path / "home"), "curate"]) == 1
    assert "no database at" in capsys.readouterr().err
    assert list((tmp_path / "home").iterdir()) == []


# -- damaged snapshots, the time split, the snapshot id (issue 13) -------------------------------------


def _two_split_snapshot(world: World) -> Any:
    for n in range(1, 5):
        world.pr(n, fix(n), issue=100 + n)
    return curate(world.store, CFG, heldout_after=T0 + timedelta(days=2, hours=12))


def _damage_deleted(path: Path) -> None:
    (path / "train.parquet").unlink()


def _damage_fewer_rows(path: Path) -> None:
    pl.read_parquet(path / "train.parquet").head(1).write_parquet(path / "train.parquet")


def _damage_same_rows_other_content(path: Path) -> None:
    frame = pl.read_parquet(path / "heldout.parquet")
    frame.with_columns(pl.lit("tampered").alias("problem_statement")).write_parquet(path / "heldout.parquet")


def _damage_not_parquet(path: Path) -> None:
    (path / "train.parquet").write_bytes(b"not parquet at all")


@pytest.mark.parametrize(
    "damage", [_damage_deleted, _damage_fewer_rows, _damage_same_rows_other_content, _damage_not_parquet]
)
def test_damaged_snapshot_is_noticed_and_rebuilt_not_called_unchanged(world: World, damage: Any) -> None:
    first = _two_split_snapshot(world)
    intact = {s: (first.path / f"{s}.parquet").read_bytes() for s in ("train", "heldout")}
    damage(first.path)
    said: list[Progress] = []
    again = curate(world.store, CFG, heldout_after=T0 + timedelta(days=2, hours=12), progress=said.append)
    assert again.id == first.id and again.created, "a damaged snapshot is rebuilt"
    assert any("is damaged" in p.message and "rebuilding" in p.message for p in said), said
    assert [r["instance_id"] for r in rows(again.path, "train")] == ["acme__widgets-1", "acme__widgets-2"]
    assert all("tampered" not in r["problem_statement"] for r in rows(again.path, "heldout"))
    assert pl.read_parquet(again.path / "train.parquet").equals(pl.read_parquet(io.BytesIO(intact["train"])))


def test_manifest_records_each_split_hash_and_row_count(world: World) -> None:
    snap = _two_split_snapshot(world)
    files = json.loads(snap.manifest_path.read_text())["files"]
    for split in ("train", "heldout"):
        digest = hashlib.sha256((snap.path / f"{split}.parquet").read_bytes()).hexdigest()
        assert files[f"{split}.parquet"] == {"sha256": digest, "rows": 2}


@pytest.mark.parametrize("key", ["name", "train_rows", "config"])
def test_manifest_missing_a_key_is_a_clear_error_and_curate_rebuilds(world: World, key: str) -> None:
    from swerl_core.snapshots import SnapshotError, read_manifest

    snap = _two_split_snapshot(world)
    manifest = json.loads(snap.manifest_path.read_text())
    del manifest[key]
    snap.manifest_path.write_text(json.dumps(manifest))
    if key == "train_rows":  # what every reader relies on
        with pytest.raises(SnapshotError, match=f"manifest.json lacks {key}"):
            read_manifest(snap.path.parent, snap.id)
    said: list[Progress] = []
    again = curate(world.store, CFG, heldout_after=T0 + timedelta(days=2, hours=12), progress=said.append)
    assert again.created and key in json.loads(again.manifest_path.read_text())
    assert any(f"lacks {key}" in p.message and "rebuilding" in p.message for p in said), said


def test_training_reader_checks_the_manifest_row_count(world: World) -> None:
    from swerl_core.snapshots import SnapshotError, read_split

    snap = _two_split_snapshot(world)
    assert read_split(snap.path.parent, snap.id, "train").num_rows == 2
    _damage_fewer_rows(snap.path)
    with pytest.raises(SnapshotError, match="has 1 rows, manifest says 2"):
        read_split(snap.path.parent, snap.id, "train")


def test_pull_request_merged_exactly_at_the_cutoff_goes_to_train(world: World) -> None:
    for n in range(1, 4):
        world.pr(n, fix(n), issue=100 + n)
    cutoff = T0 + timedelta(days=2)  # PR 2 is merged at exactly this instant
    snap = curate(world.store, CFG, heldout_after=cutoff)
    assert [r["pr_number"] for r in rows(snap.path, "train")] == [1, 2]
    assert [r["pr_number"] for r in rows(snap.path, "heldout")] == [3]


def test_snapshot_id_changes_with_the_curate_config(world: World) -> None:
    first = _two_split_snapshot(world)
    other = curate(world.store, CFG, heldout_after=T0 + timedelta(days=3, hours=12))
    assert other.id != first.id and other.created and (other.train_rows, other.heldout_rows) == (3, 1)
    fewer = curate(
        world.store, CurateConfig(retrieval="none", max_code_files=1), heldout_after=T0 + timedelta(days=3, hours=12)
    )
    assert fewer.id not in (first.id, other.id)


def test_cli_says_an_empty_split_once(world: World) -> None:
    world.pr(1, fix(1), issue=101)
    world.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWERL_")}
    env.update(SWERL_HOME=str(world.home), SWERL_CURATE__RETRIEVAL="none")
    proc = subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", "curate", "--heldout-after", T0.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("the train split is empty") == 1, proc.stderr


def test_a_stage_failing_mid_read_surfaces_as_its_own_error(world: World) -> None:
    for n in range(1, 4):
        world.pr(n, fix(n), issue=100 + n)
    cfg = CurateConfig(retrieval="none", batch_rows=1)
    # A value the settings refuse (the estimate overflows an integer), forced in so that a stage fails while the
    # store's batch reader is open: the stage's error must come out, not DuckDB's refusal of the next query.
    object.__setattr__(cfg, "chars_per_token", 1e-300)
    with pytest.raises(pl.exceptions.InvalidOperationError):
        curate(world.store, cfg)
    assert world.con.sql("SELECT count(*) FROM pull_requests").fetchall() == [(3,)]


@pytest.mark.parametrize(("days", "empty"), [(0, "train"), (30, "heldout")])
def test_an_empty_split_is_written_with_a_warning(world: World, days: int, empty: str) -> None:
    world.pr(1, fix(1), issue=101)
    said: list[Progress] = []
    snap = curate(world.store, CFG, heldout_after=T0 + timedelta(days=days), progress=said.append)
    assert getattr(snap, f"{empty}_rows") == 0
    assert any(p.message.startswith(f"warning: the {empty} split is empty") for p in said), said
