"""Quoted and hostile paths through curation, on real git repositories.

Diffs are made the way ingest makes them (:func:`swerl_core.git.pull_request_diff` on a mirror of a real
repository), their rows go into a real store (:class:`test_curate_store.World`), and curation runs through its
public entry. git quotes a name with a newline, tab, double quote or backslash in a diff's headers; it also records
``..`` and ``.git`` components in a tree built entry by entry, which no work tree may hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_curate_store import CFG, World, unified
from test_git_mirror import QUOTED_NAMES, Upstream

from swerl_core.curate.filters import split_patches
from swerl_core.curate.funnel import render_funnel
from swerl_core.curate.pipeline import EmptySnapshotError, curate
from swerl_core.diff_paths import section_paths
from swerl_core.file_kinds import CODE, TEST, file_kind
from swerl_core.git import Mirror, PullRequestDiff, pull_request_diff, read_blobs

Files = list[tuple[str, str | None, str | None]]
APP = "def f():\n    return 1\n"


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "upstream")
    repo.write("src/app.py", APP)
    repo.write('src/say "hi".py', "def hi():\n    return 'hi'\n")
    repo.write("src/café.py", "def cafe():\n    return 'cafe'\n")
    repo.commit("initial")
    return repo


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "home")
    yield w
    w.close()


def branch(upstream: Upstream, name: str, files: dict[str, str]) -> str:
    """Commit ``files`` on a new branch off main and go back to main; returns the commit."""
    upstream.git("checkout", "--quiet", "-b", name, "main")
    for path, content in files.items():
        upstream.write(path, content)
    head = upstream.commit(name)
    upstream.git("checkout", "--quiet", "main")
    return head


def with_tree_entry(upstream: Upstream, parent: str, path: str, content: str) -> str:
    """A commit on ``parent`` that adds ``path``, its tree built entry by entry with ``git mktree``: the way to record
    components git refuses to check out (``..``, ``.git``). The first component must be new to the tree."""
    *dirs, name = path.split("/")
    entry = f"100644 blob {upstream.git('hash-object', '-w', '--stdin', input=content.encode())}\t{name}\n"
    for directory in reversed(dirs):
        entry = f"040000 tree {upstream.git('mktree', input=entry.encode())}\t{directory}\n"
    listing = upstream.git("ls-tree", parent) + "\n" + entry
    root = upstream.git("mktree", input=listing.encode())
    return upstream.git("commit-tree", root, "-p", parent, "-m", f"add {path}")


def pull_diffs(upstream: Upstream, tmp_path: Path, heads: dict[int, str]) -> dict[int, tuple[PullRequestDiff, Files]]:
    """Open PR ``number`` at each head (base: main), mirror the repository, and read each PR's diff and contents."""
    for number, head in heads.items():
        upstream.git("update-ref", f"refs/pull/{number}/head", head)
    base = upstream.git("rev-parse", "main")
    mirror = Mirror(tmp_path / "mirror.git")
    mirror.sync(str(upstream.path))
    out = {}
    for number, head in heads.items():
        diff = pull_request_diff(mirror.path, base, head)
        blobs = read_blobs(mirror.path, [s for f in diff.files for s in (f.old_blob_sha, f.new_blob_sha) if s])
        files = [(f.path, _text(blobs, f.old_blob_sha), _text(blobs, f.new_blob_sha)) for f in diff.files]
        out[number] = (diff, files)
    return out


def _text(blobs: dict[str, bytes], sha: str | None) -> str | None:
    return None if sha is None else blobs[sha].decode()


def store(world: World, number: int, diff: PullRequestDiff, files: Files) -> None:
    """Write PR ``number`` as ingest would: its files, and its patch as code part then test part."""
    world.pr(number, files, issue=100 + number, patch=diff.code_patch + diff.test_patch)


def parts(diff: PullRequestDiff, kind: str) -> str:
    """The sections of ``diff`` whose file (as git's raw listing names it) is of ``kind``, in git's order."""
    return "".join(p for f, p in zip(diff.files, diff.file_patches, strict=True) if file_kind(f.path) == kind)


def snapshot_rows(path: Path) -> dict[int, dict[str, Any]]:
    frames = [pl.read_parquet(path / f"{split}.parquet") for split in ("train", "heldout")]
    return {row["pr_number"]: row for frame in frames for row in frame.to_dicts()}


def dropped_by_code_only(stages: Any) -> dict[str, int]:
    return next(s.dropped for s in stages if s.stage == "code_only")


def test_split_keeps_every_section_whose_header_git_quoted(upstream: Upstream, tmp_path: Path) -> None:
    head = branch(upstream, "names", {path: f"name = {path!r}\n" for path in QUOTED_NAMES} | {"docs/notes.md": "n\n"})
    ((diff, _),) = pull_diffs(upstream, tmp_path, {3: head}).values()
    out = split_patches(pl.DataFrame({"patch": [diff.code_patch + diff.test_patch]}))
    assert out["oracle_patch"][0] == parts(diff, CODE), "a code section fell out of oracle_patch"
    assert out["test_patch"][0] == parts(diff, TEST), "a test section fell out of test_patch"
    assert out["patch_paths"][0].to_list() == sorted(f.path for f in diff.files)


def test_four_file_pull_request_with_quoted_names_keeps_all_four_sections(
    upstream: Upstream, tmp_path: Path, world: World
) -> None:
    four = {
        'src/say "hi".py': "def hi():\n    return 'hello'\n",
        "src/café.py": "def cafe():\n    return 'café'\n",
        'tests/test_say "hi".py': "def test_hi():\n    assert True\n",
        "tests/test_café.py": "def test_cafe():\n    assert True\n",
    }
    ((diff, files),) = pull_diffs(upstream, tmp_path, {4: branch(upstream, "four", four)}).values()
    assert sum(part.startswith('diff --git "') for part in diff.file_patches) == 2, "git should quote two headers"
    store(world, 4, diff, files)
    row = snapshot_rows(curate(world.store, CFG).path)[4]
    code = sorted(path for path in four if path.startswith("src/"))
    assert row["oracle_patch"] == parts(diff, CODE) and row["test_patch"] == parts(diff, TEST)
    sections = row["oracle_patch"].replace("\ndiff --git ", "\n\0diff --git ").split("\0")
    assert [section_paths(s) for s in sections] == [(path, path) for path in code]
    assert [f["path"] for f in row["oracle_new_content"]] == code, "the oracle contents and the patch disagree"
    assert [f["path"] for f in row["code_context"]] == code


def test_pull_requests_touching_dotdot_dot_git_or_a_control_character_are_dropped_as_unsafe_path(
    upstream: Upstream, tmp_path: Path, world: World
) -> None:
    fixed = {"src/app.py": APP.replace("1", "2")}
    heads = {
        1: branch(upstream, "safe", fixed),
        2: with_tree_entry(upstream, branch(upstream, "climbs", fixed), "pkg/../../escape.py", "import os\n"),
        3: with_tree_entry(upstream, branch(upstream, "gitdir", fixed), "plugins/.git/hooks.py", "import os\n"),
        4: branch(upstream, "tab", fixed | {"src/tab\tname.py": "x = 1\n"}),
    }
    diffs = pull_diffs(upstream, tmp_path, heads)
    assert [f.path for f in diffs[2][0].files] == ["pkg/../../escape.py", "src/app.py"], "git did not record '..'"
    for number, (diff, files) in diffs.items():
        store(world, number, diff, files)
    snap = curate(world.store, CFG)
    assert sorted(snapshot_rows(snap.path)) == [1]
    assert dropped_by_code_only(snap.funnel) == {"unsafe_path": 3}
    funnel = json.loads(snap.manifest_path.read_text())["funnel"]
    assert next(s["dropped"] for s in funnel if s["stage"] == "code_only") == {"unsafe_path": 3}
    assert "dropped: unsafe_path 3" in render_funnel(snap.funnel)


def test_an_absolute_path_is_dropped_as_unsafe_path(world: World) -> None:
    # git cannot record one (it refuses an empty name in a tree), but a store's rows are input all the same.
    fix = ("src/app.py", APP, APP.replace("1", "2"))
    world.pr(1, [fix, ("/etc/cron.d/job.py", None, "import os\n")], issue=101)
    with pytest.raises(EmptySnapshotError) as caught:
        curate(world.store, CFG)
    assert dropped_by_code_only(caught.value.funnel) == {"unsafe_path": 1}


def test_a_patch_that_lacks_a_changed_files_section_is_dropped_as_disagreeing(world: World) -> None:
    fix = ("src/app.py", APP, APP.replace("1", "2"))
    other = ("src/other.py", "y = 1\n", "y = 2\n")
    world.pr(1, [fix, other], issue=101)
    world.pr(2, [fix, other], issue=102, patch=unified(*fix))
    snap = curate(world.store, CFG)
    assert sorted(snapshot_rows(snap.path)) == [1]
    assert dropped_by_code_only(snap.funnel) == {"patch_disagrees_with_files": 1}
