"""Git side of ingest on real repos: mirrors, refs/pull/*, merge base, changed files, blobs, patches."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from swerl_core.config import Secret
from swerl_core.diff_paths import section_paths, unquoted_path
from swerl_core.file_kinds import file_kind_expr, is_test_path
from swerl_core.git import (
    GitError,
    Mirror,
    decode_blob,
    merge_base,
    mirror_path,
    object_sizes,
    pull_request_commits,
    pull_request_diff,
    read_blobs,
)
from swerl_core.git.mirror import _auth_env
from swerl_core.ingest.code import file_records


class Upstream:
    """A real (non-bare) git repository standing in for the GitHub side, with refs/pull/N/head."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_700_000_000
        path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str, input: bytes | None = None) -> str:
        self.clock += 60
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        stamp = f"{self.clock} +0000"
        env.update(
            GIT_AUTHOR_NAME="Ann",
            GIT_AUTHOR_EMAIL="ann@example.com",
            GIT_COMMITTER_NAME="Ann",
            GIT_COMMITTER_EMAIL="ann@example.com",
            GIT_AUTHOR_DATE=stamp,
            GIT_COMMITTER_DATE=stamp,
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
        )
        out = subprocess.run(
            ["git", "-C", str(self.path), *args], input=input, env=env, capture_output=True, check=True
        )
        return out.stdout.decode().strip()

    def write(self, path: str, content: bytes | str) -> None:
        target = self.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "upstream")
    repo.write("src/app.py", "def f():\n    return 1\n")
    repo.write("src/old_name.py", "x = 1\ny = 2\nz = 3\n")
    repo.write("docs/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    repo.write("src/legacy.py", "gone = True\n")
    repo.commit("initial")
    return repo


def open_pull(upstream: Upstream, number: int, branch: str) -> tuple[str, str]:
    """Make the current branch PR ``number`` (refs/pull/N/head); returns (base_sha, head_sha)."""
    head = upstream.git("rev-parse", "HEAD")
    base = upstream.git("rev-parse", "main")
    upstream.git("update-ref", f"refs/pull/{number}/head", head)
    upstream.git("checkout", "--quiet", "main")
    upstream.git("branch", "-D", branch)
    return base, head


@pytest.fixture
def pull(upstream: Upstream) -> tuple[str, str]:
    """PR #1: modify, add (with non-UTF-8 bytes), delete, rename, binary change, a test, two commits."""
    upstream.git("checkout", "--quiet", "-b", "fix")
    upstream.write("src/app.py", "def f():\n    return 2  # ✓ unicode\n")
    upstream.write("src/latin1.txt", "caf\xe9\n".encode("latin-1"))
    (upstream.path / "src/legacy.py").unlink()
    upstream.git("mv", "src/old_name.py", "src/new_name.py")
    upstream.commit("Fix f\n\nFixes #3")
    upstream.write("docs/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00other-binary")
    upstream.write("tests/test_app.py", "def test_f():\n    assert True\n")
    upstream.commit("Add test, closes #4")
    return open_pull(upstream, 1, "fix")


def test_mirror_fetches_branches_and_pull_heads(tmp_path: Path, upstream: Upstream, pull: tuple[str, str]) -> None:
    mirror = Mirror(mirror_path(tmp_path / "mirrors", "acme/textkit"))
    assert mirror.path == tmp_path / "mirrors" / "acme__textkit.git"
    mirror.sync(str(upstream.path))
    refs = subprocess.run(
        ["git", "--git-dir", str(mirror.path), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "refs/heads/main" in refs and "refs/pull/1/head" in refs
    assert mirror.missing_commits(pull) == set()


def test_mirror_update_is_incremental_and_picks_up_new_pulls(
    tmp_path: Path, upstream: Upstream, pull: tuple[str, str]
) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    upstream.git("checkout", "--quiet", "-b", "second")
    upstream.write("src/app.py", "def f():\n    return 3\n")
    upstream.commit("second fix")
    _, head2 = open_pull(upstream, 2, "second")
    assert mirror.missing_commits([head2]) == {head2}
    mirror.sync(str(upstream.path))
    assert mirror.missing_commits([head2]) == set()


def test_unknown_commit_is_reported_missing(tmp_path: Path, upstream: Upstream, pull: tuple[str, str]) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    assert mirror.missing_commits(["f" * 40, pull[1]]) == {"f" * 40}


def test_unreachable_remote_gives_a_one_line_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="cannot fetch") as info:
        Mirror(tmp_path / "m.git").sync(str(tmp_path / "nowhere"))
    assert "\n" not in str(info.value)


def test_changed_files_have_status_rename_binary_sizes_and_blob_shas(
    tmp_path: Path, upstream: Upstream, pull: tuple[str, str]
) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    base, head = pull
    mb = merge_base(mirror.path, base, head)
    assert mb == base
    diff = pull_request_diff(mirror.path, mb, head)
    by_path = {f.path: f for f in diff.files}
    assert {p: f.status for p, f in by_path.items()} == {
        "docs/logo.png": "M",
        "src/app.py": "M",
        "src/latin1.txt": "A",
        "src/legacy.py": "D",
        "src/new_name.py": "R",
        "tests/test_app.py": "A",
    }
    assert by_path["src/new_name.py"].old_path == "src/old_name.py"
    assert by_path["src/legacy.py"].new_blob_sha is None and by_path["src/legacy.py"].old_blob_sha
    assert by_path["src/latin1.txt"].old_blob_sha is None
    assert by_path["docs/logo.png"].is_binary and not by_path["src/app.py"].is_binary
    assert by_path["src/app.py"].additions == 1 and by_path["src/app.py"].deletions == 1
    sizes = object_sizes(mirror.path, [by_path["src/app.py"].new_blob_sha or ""])
    assert list(sizes.values()) == [len("def f():\n    return 2  # ✓ unicode\n".encode())]


def test_patch_is_split_into_code_and_test_parts(tmp_path: Path, upstream: Upstream, pull: tuple[str, str]) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    diff = pull_request_diff(mirror.path, pull[0], pull[1])
    assert diff.test_patch.startswith("diff --git a/tests/test_app.py b/tests/test_app.py\n")
    assert "tests/test_app.py" not in diff.code_patch
    assert "diff --git a/src/app.py b/src/app.py" in diff.code_patch
    assert "+    return 2  # ✓ unicode" in diff.code_patch
    assert "rename from src/old_name.py" in diff.code_patch
    assert "Binary files a/docs/logo.png and b/docs/logo.png differ" in diff.code_patch
    assert diff.code_patch + diff.test_patch == "".join(sorted(diff.file_patches, key=lambda p: "tests/" in p))
    whole = subprocess.run(
        ["git", "--git-dir", str(mirror.path), "diff", "-M", pull[0], pull[1]],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")
    assert diff.patch == whole


def test_blobs_are_read_in_one_batch_and_non_utf8_is_flagged(
    tmp_path: Path, upstream: Upstream, pull: tuple[str, str]
) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    diff = pull_request_diff(mirror.path, pull[0], pull[1])
    by_path = {f.path: f for f in diff.files}
    shas = [
        by_path["src/latin1.txt"].new_blob_sha,
        by_path["docs/logo.png"].new_blob_sha,
        by_path["src/app.py"].old_blob_sha,
    ]
    raw = read_blobs(mirror.path, [s for s in shas if s] + ["0" * 40])
    assert len(raw) == 3
    latin = decode_blob("x", raw[shas[0] or ""], max_bytes=1000)
    assert latin.invalid_utf8 and latin.text == "caf\ufffd\n"
    logo = decode_blob("y", raw[shas[1] or ""], max_bytes=1000)
    assert logo.is_binary and logo.text is None
    old_app = decode_blob("z", raw[shas[2] or ""], max_bytes=1000)
    assert old_app.text == "def f():\n    return 1\n" and not old_app.invalid_utf8
    assert decode_blob("w", b"a" * 50, max_bytes=10).too_large


def test_commit_messages_and_first_commit_time_come_from_git_log(
    tmp_path: Path, upstream: Upstream, pull: tuple[str, str]
) -> None:
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    commits = pull_request_commits(mirror.path, pull[0], pull[1])
    assert [c.message for c in commits] == ["Fix f\n\nFixes #3", "Add test, closes #4"]
    assert commits[0].authored_at < commits[1].authored_at


def test_unrelated_histories_have_no_merge_base(tmp_path: Path, upstream: Upstream) -> None:
    upstream.git("checkout", "--quiet", "--orphan", "alone")
    upstream.git("rm", "-rf", "--quiet", ".")
    upstream.write("other.txt", "x\n")
    lonely = upstream.commit("unrelated")
    upstream.git("update-ref", "refs/pull/9/head", lonely)
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    assert merge_base(mirror.path, upstream.git("rev-parse", "main"), lonely) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_a.py", True),
        ("src/pkg/tests/helpers.py", True),
        ("test_x.py", True),
        ("pkg/foo_test.go", True),
        ("web/a.spec.ts", True),
        ("conftest.py", True),
        ("src/testing.py", False),
        ("src/contest.py", False),
        ("latest/notes.md", False),
        ("src/app.py", False),
    ],
)
def test_test_files_are_recognised_by_path_segments(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


# Paths the old ingest-only rule got wrong: suffix matches on "test" made code a test, and it missed
# directories and names curation knows.
CODE_NOT_TESTS = ("src/Latest.java", "app/Contest.kt", "lib/attest.cs")
TESTS_NOT_CODE = ("e2e/login.js", "web/__mocks__/api.js", "ui/__snapshots__/btn.js", "src/FooIT.java",
                  "pkg/foo_tests.go")  # fmt: skip


def test_ingest_flags_tests_exactly_as_curation_classifies_them(tmp_path: Path, upstream: Upstream) -> None:
    upstream.git("checkout", "--quiet", "-b", "kinds")
    for path in CODE_NOT_TESTS + TESTS_NOT_CODE:
        upstream.write(path, f"// {path}\n")
    upstream.commit("Add files of every kind")
    base, head = open_pull(upstream, 7, "kinds")
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    diff = pull_request_diff(mirror.path, base, head)
    ingest_flags = {record.path: record.is_test for record in file_records(diff, {})}
    kinds = pl.DataFrame({"path": list(ingest_flags)}).with_columns(kind=file_kind_expr(pl.col("path")))
    curate_flags = {row["path"]: row["kind"] == "test" for row in kinds.iter_rows(named=True)}
    expected = {path: path in TESTS_NOT_CODE for path in CODE_NOT_TESTS + TESTS_NOT_CODE}
    assert ingest_flags == expected, "ingest's is_test flag differs from the expected classification"
    assert curate_flags == ingest_flags, "curation classifies these paths differently from ingest"
    assert all(f"b/{path}" in diff.test_patch for path in TESTS_NOT_CODE)
    assert all(f"b/{path}" in diff.code_patch for path in CODE_NOT_TESTS)


def test_token_goes_only_to_the_configured_host_and_never_into_the_mirror(tmp_path: Path, upstream: Upstream) -> None:
    token = Secret("ghp_supersecret_token_value")
    assert _auth_env("https://github.com/a/b.git", token, {"github.com"})["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert _auth_env("https://evil.example/a/b.git", token, {"github.com"}) == {}
    assert _auth_env(str(upstream.path), token, {"github.com"}) == {}
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path), token, {"github.com"})
    for file in mirror.path.rglob("*"):
        if file.is_file():
            assert b"supersecret" not in file.read_bytes(), file


def test_huge_pull_request_with_thousands_of_files_stays_fast(tmp_path: Path, upstream: Upstream) -> None:
    upstream.git("checkout", "--quiet", "-b", "huge")
    for i in range(3000):
        upstream.write(f"gen/mod_{i:04d}.py", f"value = {i}\n" * 5)
    upstream.commit("generate 3000 modules")
    base, head = open_pull(upstream, 5, "huge")
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    started = time.monotonic()
    diff = pull_request_diff(mirror.path, base, head)
    contents = read_blobs(mirror.path, [f.new_blob_sha for f in diff.files if f.new_blob_sha])
    elapsed = time.monotonic() - started
    assert len(diff.files) == 3000 and len(contents) == 3000
    assert elapsed < 10, f"diff + blobs of a 3000-file PR took {elapsed:.1f}s"


# Names git writes quoted, with C escapes, in a diff's headers (a newline, a tab, a double quote, a backslash), one
# with a space (an unquoted name that ends its ---/+++ line with a tab) and UTF-8 (quoted as octal bytes when
# core.quotePath is on, as it is by default outside swerl).
QUOTED_NAMES = ("src/new\nline.py", "src/tab\there.py", 'src/say "hi".py', "src/back\\slash.py", "src/café.py",
                "src/two words.py", 'tests/test_"q".py')  # fmt: skip


def test_every_section_of_a_diff_names_the_file_git_listed_even_when_quoted(tmp_path: Path, upstream: Upstream) -> None:
    upstream.write('src/was "quoted".py', "moved = True\n" * 5)
    upstream.write("src/doomed\tfile.py", "bye = 1\n")
    upstream.commit("files to rename and delete")
    upstream.git("checkout", "--quiet", "-b", "names")
    for path in QUOTED_NAMES:
        upstream.write(path, f"name = {path!r}\n")
    upstream.git("mv", 'src/was "quoted".py', "src/now plain.py")
    (upstream.path / "src/doomed\tfile.py").unlink()
    upstream.commit("hostile names")
    base, head = open_pull(upstream, 8, "names")
    mirror = Mirror(tmp_path / "m.git")
    mirror.sync(str(upstream.path))
    diff = pull_request_diff(mirror.path, base, head)
    read = [section_paths(part) for part in diff.file_patches]
    listed = [(f.old_path or f.path, f.path) for f in diff.files]
    assert read == listed, "a section's header names another file than git's raw listing"
    assert sorted(f.path for f in diff.files if f.status == "A") == sorted(QUOTED_NAMES)
    quoted = sum(part.startswith('diff --git "') for part in diff.file_patches)
    assert quoted == 7, f"git quoted {quoted} headers, not the 5 added names, the deleted and the renamed one"


def test_octal_quoted_utf8_names_read_back_as_text(tmp_path: Path, upstream: Upstream) -> None:
    upstream.write("src/café.py", "x = 1\n")
    upstream.commit("accented name")
    quoted = upstream.git("-c", "core.quotePath=true", "diff", "HEAD~1", "HEAD")
    assert quoted.startswith('diff --git "a/src/caf\\303\\251.py" "b/src/caf\\303\\251.py"\n'), quoted
    assert section_paths(quoted) == ("src/café.py", "src/café.py")
    assert unquoted_path('"src/caf\\303\\251.py"') == "src/café.py"
    assert unquoted_path("src/plain.py") == "src/plain.py"
