"""End to end: the sample world through the fake GitHub server into DuckDB (ingest), then curate it into a
snapshot with both splits, through the library and through ``swerl curate``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from swerl_core import curate, ingest
from swerl_core.cli import main
from swerl_core.config import Secret, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import build_world

TOKEN = "ghp_curateE2eToken000000000000000000000"
CUT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    world = build_world(tmp_path_factory.mktemp("world"))
    home = tmp_path_factory.mktemp("home")
    with FakeGitHub(world, token=TOKEN) as fake:
        settings = load_settings(
            env={},
            overrides={"home": home, "github.api_url": fake.url, "github.seconds_between_requests": 0,
                       "ingest.git_workers": 2},
        )  # fmt: skip
        result = ingest.run(settings, ingest.IngestRequest(repos=("acme/textkit", "other/lib"), token=Secret(TOKEN)))
    assert result.status == "ok"
    yield home


@pytest.mark.slow
def test_sample_world_curates_into_train_and_heldout(ingested: Path) -> None:
    settings = load_settings(env={}, overrides={"home": ingested})
    snap = curate.run(settings, curate.CurateRequest(name="e2e", heldout_after=CUT))
    assert snap.train_rows > 0 and snap.heldout_rows > 0, f"{snap.train_rows} train, {snap.heldout_rows} held-out"
    dropped = {s.stage: s.dropped for s in snap.funnel}
    assert dropped["linked_issue"].get("no_linked_issue", 0) > 0  # the dependabot, docs and release PRs
    assert dropped["code_only"] == {"non_utf8_code_file": 1}  # the Latin-1 file of acme/textkit#30
    assert dropped["size"] == {"prompt_over_budget": 1}  # the ~100 KB issue of acme/textkit#21
    assert snap.notes.get("relevant_files_added", 0) > 0

    from datasets import load_dataset

    data = load_dataset("parquet", data_files={s: str(snap.path / f"{s}.parquet") for s in ("train", "heldout")})
    assert data["heldout"].num_rows == snap.heldout_rows
    assert all(row["merged_at"] > CUT for row in data["heldout"])
    assert all(row["merged_at"] <= CUT for row in data["train"])
    row = next(r for r in data["train"] if r["instance_id"] == "acme__textkit-2")
    context = {f["path"] for f in row["code_context"]}
    assert "src/textkit/slug.py" in context and len(context) > 1  # the changed file plus relevant ones
    assert row["hints"], "acme/textkit#1 has a comment written before the fix"


@pytest.mark.slow
def test_cli_prints_the_funnel_and_says_when_nothing_changed(
    ingested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--home", str(ingested), "curate", "--name", "cli", "--heldout-after", "2026-03-01"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "linked_issue" in first and "snapshot " in first
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "unchanged input" in second
    snapshot_dir = Path(second.strip().splitlines()[-1])
    assert json.loads((snapshot_dir / "manifest.json").read_text())["heldout_rows"] > 0
