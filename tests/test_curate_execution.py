"""Stage 10 of curation, validated instances: FAIL_TO_PASS / PASS_TO_PASS in the snapshot, counted by reason,
kept per environment digest so that a curate run again (or after a crash) never reruns a pull request's tests."""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from swerl_core import curate, ingest
from swerl_core.cli.curate import run_curate
from swerl_core.config import Secret, Settings, load_settings
from swerl_core.config.curate import CurateConfig
from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.curate.executable import validate_rows
from swerl_core.curate.funnel import FunnelCounter
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.learnable import bug_fixes, build_learnable_world
from swerl_core.errors import ConfigError
from swerl_core.execution import Limits, PullRequestCode, Validation, run_sandboxed
from swerl_core.progress import ProgressReporter
from swerl_core.snapshot_schema import ROW_SCHEMA
from swerl_core.snapshots import read_manifest, read_split, with_execution_columns
from swerl_core.train.snapshot import load_snapshot

TOKEN = "ghp_learnableWorld0000000000000000000000"
OUTCOMES = {  # base commit → what the fake validator answers
    "c1": Validation("executable", ("tests/test_a.py::test_x y",), ("tests/test_a.py::test_z",)),
    "c2": Validation("flaky", flaky=("tests/test_a.py::test_w",), reason="1 tests change outcome"),
    "c3": Validation("gold_fails", reason="1 tests fail with the gold patch"),
    "c4": Validation("no_failing_test", reason="no test fails before the gold patch"),
}


def settings_for(home: Path, *, executable_only: bool = False, workers: int = 0) -> Settings:
    return Settings(
        home=home,
        curate=CurateConfig(executable_only=executable_only),
        execution=ExecutionConfig(environments=(RepoEnvironment(repo="acme/calc"),), workers=workers),
    )


def rows() -> pl.DataFrame:
    repos = ["acme/calc"] * 4 + ["other/lib"]
    return pl.DataFrame({
        "instance_id": [f"{r.replace('/', '__')}-{i}" for i, r in enumerate(repos)],
        "repo": repos,
        "base_commit": ["c1", "c2", "c3", "c4", "c5"],
        "oracle_patch": ["diff --git a/x.py b/x.py\n"] * 5,
        "test_patch": [""] * 5,
    })  # fmt: skip


class FakeValidator:
    """Answers from :data:`OUTCOMES`, counting calls; optionally crashes at its ``crash_at``-th call."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.crash_at = crash_at

    def __call__(self, settings: Settings, pull: PullRequestCode, work_dir: Path) -> Validation:
        self.calls.append(pull.base_commit)
        if len(self.calls) == self.crash_at:
            raise KeyboardInterrupt("killed mid-validation")
        return OUTCOMES[pull.base_commit]


def run_stage(
    home: Path, validator: FakeValidator, *, executable_only: bool = False, workers: int = 0
) -> tuple[pl.DataFrame, dict, FunnelCounter]:
    funnel = FunnelCounter()
    mirrors = {"acme/calc": home / "mirror.git", "other/lib": home / "other.git"}
    settings = settings_for(home, executable_only=executable_only, workers=workers)
    out, record = validate_rows(rows(), settings, mirrors, funnel, ProgressReporter("t"), validator)
    return out, record, funnel


def test_rows_get_their_tests_and_one_status_each_and_the_manifest_counts_them(tmp_path: Path) -> None:
    out, record, funnel = run_stage(tmp_path, FakeValidator())
    assert out.get_column("execution").to_list() == [
        "executable", "flaky", "gold_fails", "no_failing_test", "no_environment"
    ]  # fmt: skip
    assert out.row(0, named=True)["fail_to_pass"] == ["tests/test_a.py::test_x y"]
    assert out.row(0, named=True)["pass_to_pass"] == ["tests/test_a.py::test_z"]
    assert record["validated"] and record["declared_repos"] == ["acme/calc"]
    assert record["environments"] == {"acme/calc": RepoEnvironment(repo="acme/calc").digest}
    assert record["counts"] == {"executable": 1, "flaky": 1, "gold_fails": 1, "no_environment": 1,
                                "no_failing_test": 1}  # fmt: skip
    [stage] = funnel.stages()
    assert (stage.stage, stage.entered, stage.dropped) == ("execution", 5, {})


def test_executable_only_drops_the_others_in_the_funnel_by_reason(tmp_path: Path) -> None:
    out, _, funnel = run_stage(tmp_path, FakeValidator(), executable_only=True)
    assert out.get_column("instance_id").to_list() == ["acme__calc-0"]
    [stage] = funnel.stages()
    assert stage.dropped == {"flaky": 1, "gold_fails": 1, "no_environment": 1, "no_failing_test": 1}


def test_without_a_declaration_nothing_runs_and_the_record_says_so(tmp_path: Path) -> None:
    funnel, validator = FunnelCounter(), FakeValidator()
    out, record = validate_rows(rows(), Settings(home=tmp_path), {}, funnel, ProgressReporter("t"), validator)
    assert validator.calls == [] and funnel.stages() == ()
    assert set(out.get_column("execution")) == {"no_environment"}
    assert record["validated"] is False and record["environments"] == {}


def test_validating_heldout_only_leaves_train_rows_not_validated_and_runs_none_of_them(tmp_path: Path) -> None:
    settings = dataclasses.replace(settings_for(tmp_path), curate=CurateConfig(validate="heldout"))
    heldout = rows().with_columns(heldout=pl.Series([False, True, False, True, True]))
    validator = FakeValidator()
    out, record = validate_rows(heldout, settings, {"acme/calc": tmp_path}, FunnelCounter(), ProgressReporter("t"),
                                validator)  # fmt: skip
    assert validator.calls == ["c2", "c4"]
    assert out.get_column("execution").to_list() == [
        "not_validated", "flaky", "not_validated", "no_failing_test", "no_environment"
    ]  # fmt: skip
    assert record["validate"] == "heldout" and record["counts"]["not_validated"] == 2
    with pytest.raises(ConfigError, match="curate.validate"):
        CurateConfig(validate="heldout", executable_only=True)


def test_a_second_curate_reads_the_outcomes_and_runs_no_test(tmp_path: Path) -> None:
    first, _, _ = run_stage(tmp_path, FakeValidator())
    again = FakeValidator()
    second, _, _ = run_stage(tmp_path, again)
    assert again.calls == []
    assert second.equals(first)


def test_a_crash_mid_validation_reruns_only_the_rest_to_the_same_rows(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_stage(tmp_path, FakeValidator(crash_at=3), workers=1)  # one at a time: the 3rd call is c3
    rerun = FakeValidator()
    out, _, _ = run_stage(tmp_path, rerun)
    # c1 and c2 finished before the crash; c4 may have finished beside it (a worker takes the next one at once)
    assert rerun.calls in (["c3"], ["c3", "c4"]), rerun.calls
    expected, _, _ = run_stage(tmp_path / "fresh", FakeValidator())
    assert out.equals(expected)


def test_an_older_snapshot_without_the_columns_reads_as_not_validated() -> None:
    table = with_execution_columns(pa.table({"instance_id": ["a__b-1"]}))
    assert table.to_pylist() == [
        {"instance_id": "a__b-1", "execution": "not_validated", "fail_to_pass": [], "pass_to_pass": []}
    ]


def test_rows_written_without_the_values_read_as_not_validated() -> None:
    rows = [{"instance_id": "a__b-1"}, {"instance_id": "a__b-2", "execution": "executable", "fail_to_pass": ["t"]}]
    table = with_execution_columns(pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
    assert table.select(["execution", "fail_to_pass", "pass_to_pass"]).to_pylist() == [
        {"execution": "not_validated", "fail_to_pass": [], "pass_to_pass": []},
        {"execution": "executable", "fail_to_pass": ["t"], "pass_to_pass": []},
    ]


@pytest.mark.slow
def test_learnable_world_curates_into_executable_instances_with_their_own_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prs = 3
    world = build_learnable_world(tmp_path / "world", seed=0, prs_per_repo=prs, heldout_share=0.34)
    config = tmp_path / "settings.yaml"
    config.write_text(
        "execution:\n  environments:\n"
        '    - {repo: learn/shop, requirements: ["pytest"]}\n'
        "    - {repo: learn/games, python: /nonexistent/python3}\n"
    )
    with FakeGitHub(world, token=TOKEN) as fake:
        settings = load_settings(
            config,
            env={},
            overrides={"home": tmp_path / "home", "github.api_url": fake.url, "github.seconds_between_requests": 0,
                       "github.local_clones": True, "curate.relevant_files": 0},
        )  # fmt: skip
        assert ingest.run(settings, ingest.IngestRequest(repos=tuple(world.repos), token=Secret(TOKEN))).status == "ok"
    started = time.monotonic()
    snapshot = curate.run(settings, curate.CurateRequest(name="validated", heldout_after=world.heldout_after))
    elapsed = time.monotonic() - started
    manifest = read_manifest(settings.snapshots_dir, snapshot.id)
    record = manifest["execution"]
    assert record["declared_repos"] == ["learn/games", "learn/shop"]
    assert record["counts"] == {"executable": prs, "install_failed": prs, "no_environment": prs}, record
    assert snapshot.execution == record["counts"]
    stage = next(s for s in snapshot.funnel if s.stage == "execution")
    assert (stage.entered, stage.dropped) == (3 * prs, {})

    tables = [read_split(settings.snapshots_dir, snapshot.id, split) for split in ("train", "heldout")]
    rows = [row for table in tables for row in table.to_pylist()]
    shop = [r for r in rows if r["repo"] == "learn/shop"]
    expected = {fix.test_id for fix in bug_fixes(prs, 0, "shop")}
    assert {test for r in shop for test in r["fail_to_pass"]} == expected
    for row in shop:
        [test] = row["fail_to_pass"]
        assert test.rpartition("::test_")[2] in row["oracle_patch"], (test, row["oracle_patch"])
        assert test not in row["pass_to_pass"]
    assert all(not r["fail_to_pass"] for r in rows if r["repo"] != "learn/shop")
    train, heldout = load_snapshot(settings.snapshots_dir, snapshot.id)
    assert len(train) + len(heldout) == 3 * prs
    print(f"curate with {prs} validations: {elapsed:.1f} s")  # the environment's build included

    def no_run(settings: Settings, pull: PullRequestCode, work_dir: Path) -> Validation:
        if pull.repo == "learn/games":  # a failed build is tried again by the next curate: it is never kept
            return Validation("install_failed", reason="build failed")
        raise AssertionError(f"{pull.base_commit} was validated again")

    monkeypatch.setattr("swerl_core.curate.executable.validate_instance", no_run)
    settings2 = load_settings(
        config,
        env={},
        overrides={"home": tmp_path / "home", "curate.relevant_files": 0, "curate.min_issue_chars": 11},
    )
    again = curate.run(settings2, curate.CurateRequest(name="again", heldout_after=world.heldout_after))
    assert again.id != snapshot.id
    assert read_manifest(settings.snapshots_dir, again.id)["execution"]["counts"] == record["counts"]
    assert json.dumps(record, sort_keys=True)  # plain JSON
    capsys.readouterr()
    assert run_curate(argparse.Namespace(name="cli"), settings2) == 0
    assert "validated instances: executable 3, install_failed 3, no_environment 3\n" in capsys.readouterr().out


def test_validations_run_workers_at_a_time_after_each_repositorys_first_ran_alone(tmp_path: Path) -> None:
    """Each repository's first validation builds its environment alone; a failed build is the others' outcome."""
    lock, active, seen = threading.Lock(), [0], []  # seen: (base commit, validations running when it started)

    def validator(settings: Settings, pull: PullRequestCode, work_dir: Path) -> Validation:
        with lock:
            active[0] += 1
            seen.append((pull.base_commit, active[0]))
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        if pull.repo == "other/lib":
            return Validation("install_failed", reason="build failed")
        return Validation("executable", (f"t.py::test_{pull.base_commit}",))

    repos = ["acme/calc"] * 5 + ["other/lib"] * 3
    table = pl.DataFrame({
        "instance_id": [f"pr-{i}" for i in range(8)], "repo": repos, "heldout": [True] * 8,
        "base_commit": [f"c{i}" for i in range(8)], "oracle_patch": ["diff --git a/x.py b/x.py\n"] * 8,
        "test_patch": [""] * 8,
    })  # fmt: skip
    environments = (RepoEnvironment(repo="acme/calc"), RepoEnvironment(repo="other/lib"))
    settings = Settings(home=tmp_path, execution=ExecutionConfig(environments=environments, workers=2))
    mirrors = {"acme/calc": tmp_path / "calc.git", "other/lib": tmp_path / "lib.git"}
    out, _ = validate_rows(table, settings, mirrors, FunnelCounter(), ProgressReporter("t"), validator)
    assert out.get_column("execution").to_list() == ["executable"] * 5 + ["install_failed"] * 3
    assert out.get_column("fail_to_pass").to_list() == [[f"t.py::test_c{i}"] for i in range(5)] + [[]] * 3
    assert seen[:2] == [("c0", 1), ("c5", 1)], "a repository's first validation did not run alone"
    assert sorted(commit for commit, _ in seen) == ["c0", "c1", "c2", "c3", "c4", "c5"], "a failed build was retried"
    assert max(running for _, running in seen) == 2, seen


def test_an_interrupt_kills_the_running_validations_and_keeps_none_of_them(tmp_path: Path) -> None:
    """Ctrl-C reaches the main thread only; the workers' sandboxes are killed, not waited for, and not cached."""
    ended: list[int] = []
    sleeping = threading.Event()

    def validator(settings: Settings, pull: PullRequestCode, work_dir: Path) -> Validation:
        if pull.base_commit == "c1":  # in a worker: a sandbox that would run for minutes
            work_dir.mkdir(parents=True)
            threading.Timer(1.0, sleeping.set).start()
            ended.append(run_sandboxed(["sleep", "300"], work_dir, Limits(wall_s=600)).exit_code)
        elif pull.base_commit == "c2":
            sleeping.wait(60)
        return Validation("executable", ("t.py::test_x",))

    def say(text: str, *_: object) -> None:
        if text.startswith("validated pr-2"):  # Ctrl-C lands in the main thread while pr-1 runs
            raise KeyboardInterrupt

    table = pl.DataFrame({
        "instance_id": [f"pr-{i}" for i in range(3)], "repo": ["acme/calc"] * 3, "heldout": [True] * 3,
        "base_commit": ["c0", "c1", "c2"], "oracle_patch": [f"diff --git a/{i}.py b/{i}.py\n" for i in range(3)],
        "test_patch": [""] * 3,
    })  # fmt: skip
    environments = (RepoEnvironment(repo="acme/calc"),)
    settings = Settings(home=tmp_path, execution=ExecutionConfig(environments=environments, workers=2))
    with pytest.raises(KeyboardInterrupt):
        validate_rows(table, settings, {"acme/calc": tmp_path / "calc.git"}, FunnelCounter(), say, validator)
    assert ended == [137], "the running validation was waited for, not stopped"
    kept = list((tmp_path / "validations").rglob("*.json"))
    assert len(kept) == 2, f"pr-0 and pr-2 finished and are kept, the stopped pr-1 is not: {kept}"
