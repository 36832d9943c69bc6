"""The learnable world: generated bug fixes that go through the fake GitHub, ingest and curate like any world,
with held-out pull requests merged after its cutoff, and oracle answers that score 1.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from swerl_core import curate, ingest
from swerl_core.config import Secret, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.learnable import (
    FAMILIES,
    HELDOUT_AFTER,
    REPOS,
    LearnableWorld,
    bug_fixes,
    build_learnable_world,
)
from swerl_core.demo.toy import write_toy_snapshot
from swerl_core.reward import search_replace_reward
from swerl_core.snapshots import as_files
from swerl_core.train.examples import oracle_completion
from swerl_core.train.snapshot import load_snapshot

TOKEN = "ghp_learnableWorld0000000000000000000000"


def test_bug_fixes_are_deterministic_distinct_and_one_change_each() -> None:
    fixes = bug_fixes(60, seed=4)
    assert fixes == bug_fixes(60, seed=4) and fixes != bug_fixes(60, seed=5)
    assert len({f.path for f in fixes}) == 60
    assert {f.family for f in fixes} == set(FAMILIES)
    for fix in fixes:
        assert fix.before != fix.after
        assert fix.path in fix.body and fix.function in fix.before


def test_value_families_take_the_new_value_from_the_issue_where_the_old_one_competes() -> None:
    """The families where GRPO has room: the fixed line is the buggy line with one value changed, the new value is
    written only in the issue, and the issue names the old value too (so copying the line is not enough)."""
    fixes = [f for f in bug_fixes(200, seed=2) if f.family in ("comparison", "default", "constant", "status")]
    assert {f.family for f in fixes} == {"comparison", "default", "constant", "status"}
    for fix in fixes:
        old, new = next((a, b) for a, b in zip(fix.before.split("\n"), fix.after.split("\n"), strict=True) if a != b)
        changed = [(x, y) for x, y in zip(old.split(), new.split(), strict=True) if x != y]
        assert len(changed) == 1, (old, new)
        old_value, new_value = (v.strip('"=):,') for v in changed[0])
        old_value, new_value = old_value.split("=")[-1], new_value.split("=")[-1]
        assert new_value in fix.body and old_value in fix.body, fix.body
        assert new_value not in fix.before.replace(fix.path, ""), (new_value, fix.before)


def test_explicit_issues_state_the_line_to_replace() -> None:
    for fix in bug_fixes(12, explicit=True):
        old = next(a for a, b in zip(fix.before.split("\n"), fix.after.split("\n"), strict=True) if a != b)
        assert f"`{old.strip()}`" in fix.body


def test_toy_sft_set_pairs_every_fix_with_a_well_formed_decoy_that_scores_less(tmp_path: Path) -> None:
    """The toy set's premise: SFT sees each prompt with the real fix (1.0) and a decoy that applies but
    leaves the bug (strictly between 0 and 1); GRPO's snapshot holds only the real fixes."""
    snapshots = write_toy_snapshot(tmp_path, n_train=6, seed=3)
    snapshots_dir = load_settings(env={"SWERL_HOME": str(tmp_path)}).snapshots_dir
    grpo_rows = list(load_snapshot(snapshots_dir, snapshots.grpo)[0])
    sft_rows = list(load_snapshot(snapshots_dir, snapshots.sft)[0])
    assert len(grpo_rows) == 6 and len(sft_rows) == 12
    for real in grpo_rows:
        decoy = next(r for r in sft_rows if r["instance_id"] == f"{real['instance_id']}-decoy")
        assert decoy["problem_statement"] == real["problem_statement"]
        assert decoy["code_context"] == real["code_context"]
        context, oracle = as_files(real["code_context"]), as_files(real["oracle_new_content"])
        assert search_replace_reward(context, oracle, oracle_completion(real)).reward == 1.0
        decoy_reward = search_replace_reward(context, oracle, oracle_completion(decoy))
        assert not decoy_reward.is_format_error and 0.0 < decoy_reward.reward < 1.0


def test_build_is_reused_for_the_same_parameters_and_rebuilt_otherwise(tmp_path: Path) -> None:
    world = build_learnable_world(tmp_path, seed=0, prs_per_repo=10)
    assert isinstance(world, LearnableWorld) and sorted(world.repos) == sorted(REPOS)
    assert all(len(r.pulls) == 10 and all(p.merged for p in r.pulls.values()) for r in world.repos.values())
    again = build_learnable_world(tmp_path, seed=0, prs_per_repo=10)
    assert {n: r.pulls[2].merge_commit_sha for n, r in again.repos.items()} == {
        n: r.pulls[2].merge_commit_sha for n, r in world.repos.items()
    }
    other = build_learnable_world(tmp_path, seed=1, prs_per_repo=10)
    assert other.repos["learn/shop"].issues[1].body != world.repos["learn/shop"].issues[1].body


@pytest.mark.slow
def test_served_ingested_and_curated_into_answerable_train_and_heldout_rows(tmp_path: Path) -> None:
    world = build_learnable_world(tmp_path / "world", seed=0, prs_per_repo=20, heldout_share=0.2)
    with FakeGitHub(world, token=TOKEN) as fake:
        settings = load_settings(
            env={},
            overrides={"home": tmp_path / "home", "github.api_url": fake.url, "github.seconds_between_requests": 0,
                       "github.local_clones": True, "curate.relevant_files": 0},
        )  # fmt: skip
        request = ingest.IngestRequest(repos=tuple(world.repos), token=Secret(TOKEN))
        assert ingest.run(settings, request).status == "ok"
    snapshot = curate.run(settings, curate.CurateRequest(name="learnable", heldout_after=world.heldout_after))
    assert (snapshot.train_rows, snapshot.heldout_rows) == (48, 12)
    train, heldout = load_snapshot(settings.snapshots_dir, snapshot.id)
    assert all(row["merged_at"] > HELDOUT_AFTER for row in heldout)
    for row in [*train, *heldout]:
        assert len(row["code_context"]) == 1 and row["code_context"][0]["path"] in row["problem_statement"]
        context, oracle = as_files(row["code_context"]), as_files(row["oracle_new_content"])
        assert search_replace_reward(context, oracle, oracle_completion(row)).reward == 1.0
