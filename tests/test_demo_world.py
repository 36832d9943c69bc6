"""The sample world and synthetic repositories: real bare git repositories whose records match git."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from swerl_core.demo.synthetic import build_synthetic_repo, extend_synthetic_repo
from swerl_core.demo.world import (
    ADA,
    EDGE_CASES,
    CommitSpec,
    DemoError,
    Edit,
    PullSpec,
    RepoData,
    SampleWorld,
    Write,
    build_world,
    find_repo,
    load_repos,
    parse_issue_ref,
    run_git,
    save_repos,
)
from swerl_core.git.command import git_env

TEXTKIT = "acme/textkit"


@pytest.fixture(scope="session")
def world(sample_world: SampleWorld) -> SampleWorld:
    """The shared sample world (read-only here)."""
    return sample_world


@pytest.fixture
def textkit(world: SampleWorld) -> RepoData:
    return world.repo(TEXTKIT)


def git(repo: RepoData, *args: str) -> str:
    return run_git(repo.bare_path, *args).decode()


def parents(repo: RepoData, sha: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n", "1", sha).split()[1:]


def has_object(repo: RepoData, sha: str) -> bool:
    return (
        subprocess.run(
            ["git", f"--git-dir={repo.bare_path}", "cat-file", "-e", sha], env=git_env(), capture_output=True
        ).returncode
        == 0
    )


def file_at(repo: RepoData, rev: str, path: str) -> bytes:
    return run_git(repo.bare_path, "show", f"{rev}:{path}")


# -- git repositories --------------------------------------------------------------------------------


def test_every_pull_request_has_a_pull_ref_except_the_one_whose_head_vanished(textkit: RepoData) -> None:
    refs = set(git(textkit, "for-each-ref", "--format=%(refname)").split())
    expected = {f"refs/pull/{n}/head" for n in textkit.pulls if n != 52}
    assert "refs/heads/main" in refs
    assert expected <= refs
    assert "refs/pull/52/head" not in refs


def test_pull_ref_points_at_the_reported_head_sha(textkit: RepoData) -> None:
    for number, pull in textkit.pulls.items():
        if number != 52:
            assert git(textkit, "rev-parse", f"refs/pull/{number}/head").strip() == pull.head_sha, number


def test_merge_style_sets_the_parents_of_merge_commit_sha(textkit: RepoData) -> None:
    assert parents(textkit, textkit.pulls[2].merge_commit_sha or "")[1] == textkit.pulls[2].head_sha
    assert len(parents(textkit, textkit.pulls[4].merge_commit_sha or "")) == 1  # squash merge
    assert parents(textkit, textkit.pulls[4].merge_commit_sha or "") == [textkit.pulls[4].base_sha]


def test_merged_pull_requests_are_on_main_in_merge_order(textkit: RepoData) -> None:
    main_line = git(textkit, "rev-list", "--first-parent", "main").split()
    merged = sorted((p for p in textkit.pulls.values() if p.merged), key=lambda p: p.merged_at or "")
    positions = [main_line.index(p.merge_commit_sha or "") for p in merged]
    assert positions == sorted(positions, reverse=True)


def test_merge_commit_contains_the_fix(textkit: RepoData) -> None:
    fixed = file_at(textkit, textkit.pulls[2].merge_commit_sha or "", "src/textkit/slug.py")
    before = file_at(textkit, textkit.pulls[2].base_sha, "src/textkit/slug.py")
    assert b".strip(sep)" in fixed and b".strip(sep)" not in before


def test_pull_started_before_another_merged_keeps_its_old_base(textkit: RepoData) -> None:
    pull_30, pull_32 = textkit.pulls[30], textkit.pulls[32]
    assert pull_30.base_sha == pull_32.base_sha
    assert parents(textkit, pull_30.merge_commit_sha or "")[0] == pull_32.merge_commit_sha


def test_missing_head_is_gone_from_git_but_reported_with_its_diff(textkit: RepoData) -> None:
    pull = textkit.pulls[52]
    assert not has_object(textkit, pull.head_sha)
    assert all(not has_object(textkit, c.sha) for c in pull.commits)
    assert has_object(textkit, pull.merge_commit_sha or "") and has_object(textkit, pull.base_sha)
    assert pull.stored_diff is not None and "diff --git a/src/textkit/case.py" in pull.stored_diff


def test_open_pull_requests_have_a_test_merge_ref_and_a_branch(textkit: RepoData) -> None:
    for number, branch in ((44, "wrap-break-long"), (60, "title-case")):
        assert git(textkit, "rev-parse", f"refs/pull/{number}/merge").strip() == textkit.pulls[number].merge_commit_sha
        assert git(textkit, "rev-parse", f"refs/heads/{branch}").strip() == textkit.pulls[number].head_sha


def test_clone_url_works_with_plain_git_clone_and_fetch(textkit: RepoData, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--bare", textkit.clone_url, str(clone)], env=git_env(), check=True)
    subprocess.run(
        ["git", "--git-dir", str(clone), "fetch", "-q", "origin", "+refs/pull/*/head:refs/pull/*/head"],
        env=git_env(),
        check=True,
    )
    fetched = run_git(clone, "rev-parse", "refs/pull/45/head").decode().strip()
    assert fetched == textkit.pulls[45].head_sha


def test_commit_dates_and_authors_are_the_recorded_ones(textkit: RepoData) -> None:
    commit = textkit.pulls[14].commits[0]
    line = git(textkit, "log", "-1", "--format=%an|%ae|%aI|%cI", commit.sha).strip()
    assert line == f"陈伟|{commit.author_email}|2025-03-28T02:40:00Z|2025-03-28T02:40:00Z".replace("Z", "+00:00")


def test_builds_in_two_places_give_identical_shas(world: SampleWorld, tmp_path: Path) -> None:
    twin = build_world(tmp_path / "twin")
    for name, repo in world.repos.items():
        other = twin.repo(name)
        assert [(p.head_sha, p.merge_commit_sha) for p in repo.pulls.values()] == [
            (p.head_sha, p.merge_commit_sha) for p in other.pulls.values()
        ]


def test_second_build_reuses_the_first(world: SampleWorld) -> None:
    pack_times = sorted(p.stat().st_mtime_ns for p in world.root.rglob("*.pack"))
    started = time.monotonic()
    again = build_world(world.root)
    assert time.monotonic() - started < 1.0
    assert sorted(p.stat().st_mtime_ns for p in world.root.rglob("*.pack")) == pack_times
    assert again.repo(TEXTKIT).pulls[2].head_sha == world.repo(TEXTKIT).pulls[2].head_sha


def test_stale_manifest_makes_the_next_build_start_over(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    save_repos(copy.root / "world.json", copy.repos.values(), "stale")
    run_git(copy.repo(TEXTKIT).bare_path, "update-ref", "-d", "refs/pull/2/head")
    rebuilt = build_world(copy.root)
    assert run_git(rebuilt.repo(TEXTKIT).bare_path, "rev-parse", "refs/pull/2/head").strip()


# -- the sample library itself ------------------------------------------------------------------------


def test_textkit_main_passes_its_own_tests(textkit: RepoData, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(run_git(textkit.bare_path, "archive", "main"))) as archive:
        archive.extractall(tmp_path, filter="data")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # our plugins are not textkit's; skip their start-up
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-2000:]


def test_fixing_pull_requests_change_source_and_tests(textkit: RepoData) -> None:
    for ref in EDGE_CASES["keyword_fixes"] + EDGE_CASES["cross_repo_reference"] + EDGE_CASES["crlf_file"]:
        pull = textkit.pulls[parse_issue_ref(ref)[1]]
        names = git(textkit, "diff", "--name-only", pull.base_sha, pull.head_sha).split()
        assert any(n.startswith("src/") for n in names) and any(n.startswith("tests/") for n in names), names


def test_special_files_keep_their_bytes(textkit: RepoData) -> None:
    accents = file_at(textkit, "main", "src/textkit/accents.py")
    newlines = file_at(textkit, "main", "src/textkit/newlines.py")
    with pytest.raises(UnicodeDecodeError):
        accents.decode("utf-8")
    assert "É".encode("latin-1") in accents
    assert newlines.count(b"\r\n") == newlines.count(b"\n") > 5
    assert file_at(textkit, "main", "docs/logo.png").startswith(b"\x89PNG\r\n\x1a\n")


def test_rename_and_delete_show_up_in_git_diffs(textkit: RepoData) -> None:
    renamed = git(textkit, "diff", "-M", "--name-status", textkit.pulls[28].base_sha, textkit.pulls[28].head_sha)
    deleted = git(textkit, "diff", "--name-status", textkit.pulls[25].base_sha, textkit.pulls[25].head_sha)
    assert "src/textkit/csvish.py\tsrc/textkit/delimited.py" in renamed
    assert "D\tsrc/textkit/legacy.py" in deleted


# -- records ------------------------------------------------------------------------------------------


def test_edge_cases_name_existing_issues_and_pull_requests(world: SampleWorld) -> None:
    world.advance(0)
    later = {"acme/textkit#61", "acme/textkit#62", "acme/textkit#63"}
    for case, refs in EDGE_CASES.items():
        for ref in set(refs) - later:
            name, number = parse_issue_ref(ref)
            repo = world.repo(name)
            known = {*repo.issues, *repo.pulls, *repo.deleted_issues, *repo.moved_issues}
            assert number in known, f"{case}: {ref} does not exist"


def test_pull_request_states(textkit: RepoData) -> None:
    kept = {n for n, p in textkit.pulls.items() if p.merged}
    assert {44, 45, 60}.isdisjoint(kept) and len(kept) == 31
    assert (textkit.pulls[44].state, textkit.pulls[44].draft) == ("open", True)
    assert (textkit.pulls[45].state, textkit.pulls[45].merged_at) == ("closed", None)
    assert textkit.pulls[60].body is None and textkit.pulls[16].body == ""


def test_bot_and_fork_pull_requests(textkit: RepoData) -> None:
    assert textkit.pulls[7].user.type == "Bot" and textkit.pulls[7].user.login == "dependabot[bot]"
    assert textkit.pulls[23].title.startswith("chore(deps): bump")
    assert textkit.pulls[27].head_repo == "mallory-dev/textkit"
    assert textkit.pulls[54].head_repo is None


def test_closing_references_are_the_graphql_truth(world: SampleWorld, textkit: RepoData) -> None:
    assert textkit.pulls[18].closing_issues == ["acme/textkit#17"]  # not #8 from the HTML comment
    assert textkit.pulls[35].closing_issues == ["acme/textkit#34"]  # not #2, a pull request
    assert textkit.pulls[16].closing_issues == []  # only its commit message says "Fixes #15"
    assert textkit.pulls[39].closing_issues == ["other/lib#5"]  # #38 was transferred there
    assert textkit.moved_issues == {38: "other/lib#5"} and textkit.deleted_issues == [36]


def test_merged_fix_closes_its_issues_at_merge_time_across_repos(world: SampleWorld, textkit: RepoData) -> None:
    assert textkit.issues[1].closed_at == textkit.pulls[2].merged_at
    assert world.repo("other/lib").issues[3].closed_at == textkit.pulls[20].merged_at
    assert textkit.issues[59].state == "open"


def test_hint_comments_come_before_the_first_commit(textkit: RepoData) -> None:
    hint = textkit.comments_on(1)[0]
    assert hint.created_at < textkit.pulls[2].commits[0].committed_at
    assert textkit.comments_on(2)[0].created_at > textkit.pulls[2].commits[0].committed_at


def test_bodies_cover_null_unicode_and_large(textkit: RepoData) -> None:
    assert textkit.issues[15].body is None
    assert "🐛" in textkit.issues[13].title and "不间断空格" in (textkit.issues[13].body or "")
    assert len((textkit.issues[21].body or "").encode()) > 100_000


def test_dates_span_early_2025_to_late_2026(world: SampleWorld) -> None:
    stamps = [p.created_at for r in world.repos.values() for p in r.pulls.values()]
    assert min(stamps) < "2025-02" and max(stamps) > "2026-10"


def test_records_survive_a_json_round_trip(world: SampleWorld, tmp_path: Path) -> None:
    save_repos(tmp_path / "w.json", world.repos.values(), "h")
    digest, loaded = load_repos(tmp_path / "w.json")
    assert digest == "h" and loaded == list(world.repos.values())


# -- changing a world ---------------------------------------------------------------------------------


def test_advance_merges_the_later_batches_on_a_copy(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    added = copy.advance()
    repo = copy.repo(TEXTKIT)
    assert [p.number for p in added] == [62, 63]
    assert git(repo, "rev-parse", "main").strip() == repo.pulls[63].merge_commit_sha
    assert repo.issues[59].state == "closed" and repo.issues[61].closed_at == repo.pulls[62].merged_at
    assert 62 not in world.repo(TEXTKIT).pulls and (world.root / "world.json").exists()
    assert not (copy.root / "world.json").exists()


def test_add_pull_builds_on_current_main(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    record = copy.add_pull(
        TEXTKIT,
        PullSpec(
            70,
            "Add NOTICE",
            "Adds a NOTICE file.",
            ADA,
            "2026-12-01T10:00:00Z",
            "notice",
            (CommitSpec("Add NOTICE", "2026-12-01T09:00:00Z", (Write("NOTICE", "Acme\n"),)),),
            closed_at="2026-12-01T11:00:00Z",
        ),
    )
    repo = copy.repo(TEXTKIT)
    assert record.base_sha == world.repo(TEXTKIT).pulls[58].merge_commit_sha
    assert file_at(repo, "main", "NOTICE") == b"Acme\n"


def test_add_pull_rejects_an_edit_that_does_not_apply_or_a_used_number(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    bad_edit = (CommitSpec("x", "2026-12-01T09:00:00Z", (Edit("README.md", "no such text", "y"),)),)
    with pytest.raises(DemoError, match="found 0 times"):
        copy.add_pull(
            TEXTKIT,
            PullSpec(70, "x", None, ADA, "2026-12-01T10:00:00Z", "x", bad_edit, closed_at="2026-12-02T10:00:00Z"),
        )
    with pytest.raises(DemoError, match="duplicate"):
        copy.add_pull(TEXTKIT, PullSpec(2, "x", None, ADA, "2026-12-01T10:00:00Z", "x", bad_edit))


def test_rename_keeps_the_old_name_findable(world: SampleWorld, tmp_path: Path) -> None:
    copy = world.copy_to(tmp_path / "copy")
    copy.rename_repo(TEXTKIT, "acme/textkit-ng")
    assert copy.repo(TEXTKIT).full_name == "acme/textkit-ng"
    assert find_repo(copy.repos.values(), "ACME/TEXTKIT") is copy.repo("acme/textkit-ng")


# -- synthetic repositories ---------------------------------------------------------------------------


def test_synthetic_repo_has_the_requested_counts_and_real_refs(tmp_path: Path) -> None:
    repo = build_synthetic_repo(tmp_path, "bench/small", n_prs=120, n_issues=80, seed=3)
    assert (len(repo.pulls), len(repo.issues)) == (120, 80)
    merged = [p for p in repo.pulls.values() if p.merged]
    assert len(merged) > 100
    pull = merged[-1]
    assert run_git(repo.bare_path, "rev-parse", f"refs/pull/{pull.number}/head").decode().strip() == pull.head_sha
    assert (
        run_git(repo.bare_path, "rev-parse", "main").decode().strip()
        == max(merged, key=lambda p: p.merged_at or "").merge_commit_sha
    )


def test_synthetic_build_is_deterministic_and_cached(tmp_path: Path) -> None:
    first = build_synthetic_repo(tmp_path / "a", "bench/small", n_prs=40, n_issues=30)
    second = build_synthetic_repo(tmp_path / "b", "bench/small", n_prs=40, n_issues=30)
    assert [p.head_sha for p in first.pulls.values()] == [p.head_sha for p in second.pulls.values()]
    started = time.monotonic()
    again = build_synthetic_repo(tmp_path / "a", "bench/small", n_prs=40, n_issues=30)
    assert time.monotonic() - started < 0.5 and again == first


def test_extend_adds_later_merged_pull_requests_and_drops_the_cache(tmp_path: Path) -> None:
    repo = build_synthetic_repo(tmp_path, "bench/small", n_prs=40, n_issues=30)
    last = max(p.updated_at for p in repo.pulls.values())
    extend_synthetic_repo(repo, n_new_prs=10)
    new = [p for p in repo.pulls.values() if p.created_at > last]
    assert len(new) == 10 and all(p.merged for p in new)
    assert run_git(repo.bare_path, "rev-parse", "main").decode().strip() == new[-1].merge_commit_sha
    rebuilt = build_synthetic_repo(tmp_path, "bench/small", n_prs=40, n_issues=30)
    assert len(rebuilt.pulls) == 40
