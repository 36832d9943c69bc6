"""What a pull request changed, computed by git between its merge base and its head.

Owns the merge base, the list of changed files (status, rename detection, binary flag, blob SHAs,
line counts) and the cumulative unified patch, all from one ``git diff`` per PR so a PR with
thousands of files costs one process. Which files are tests is decided by :mod:`swerl_core.file_kinds`,
the rule curation uses too. It must never read file contents one process per file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swerl_core.file_kinds import is_test_path
from swerl_core.git.command import run_git
from swerl_core.git.errors import GitError

NULL_SHA = "0" * 40
_GITLINK_MODE = "160000"


@dataclass(frozen=True)
class ChangedFile:
    """One file changed between merge base and head; ``path`` is the old path for a deletion."""

    path: str
    old_path: str | None
    status: str  # A, M, D or R
    old_blob_sha: str | None
    new_blob_sha: str | None
    is_binary: bool
    is_submodule: bool
    additions: int | None
    deletions: int | None


@dataclass(frozen=True)
class PullRequestDiff:
    """The changed files of a PR (in git's order) and its cumulative unified patch, one part per file."""

    files: tuple[ChangedFile, ...]
    file_patches: tuple[str, ...]

    @property
    def patch(self) -> str:
        """The whole cumulative unified patch (as ``git diff merge_base head`` prints it)."""
        return "".join(self.file_patches)

    @property
    def code_patch(self) -> str:
        """The part of the patch touching non-test files (the SWE-RL oracle patch)."""
        return "".join(p for f, p in zip(self.files, self.file_patches, strict=True) if not is_test_path(f.path))

    @property
    def test_patch(self) -> str:
        """The part of the patch touching test files."""
        return "".join(p for f, p in zip(self.files, self.file_patches, strict=True) if is_test_path(f.path))


def merge_base(git_dir: Path, base_sha: str, head_sha: str) -> str | None:
    """The best common ancestor of ``base_sha`` and ``head_sha``; None when histories are unrelated."""
    out = run_git(git_dir, ["merge-base", base_sha, head_sha], ok_codes=(0, 1))
    text = out.decode().strip()
    return text or None


def pull_request_diff(git_dir: Path, merge_base_sha: str, head_sha: str) -> PullRequestDiff:
    """Changed files and the unified patch from ``merge_base_sha`` to ``head_sha`` (renames detected)."""
    out = run_git(
        git_dir,
        [
            "diff",
            "--raw",
            "--numstat",
            "--patch",
            "-z",
            "-M",
            "--no-abbrev",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            merge_base_sha,
            head_sha,
            "--",
        ],
    )
    return parse_diff_output(out)


def parse_diff_output(out: bytes) -> PullRequestDiff:
    """Parse ``git diff --raw --numstat --patch -z`` output into files and per-file patch parts."""
    pos = 0

    def field() -> bytes:
        nonlocal pos
        end = out.find(b"\0", pos)
        if end < 0:
            raise GitError("git diff output ended in the middle of a record")
        value = out[pos:end]
        pos = end + 1
        return value

    raw: list[tuple[str, str, str, str, str, str, str | None]] = []
    while pos < len(out) and out[pos : pos + 1] == b":":
        meta = field().decode()[1:].split()
        old_mode, new_mode, old_sha, new_sha, status = meta[0], meta[1], meta[2], meta[3], meta[4]
        first = _path(field())
        second = _path(field()) if status[0] in "RC" else None
        raw.append((old_mode, new_mode, old_sha, new_sha, status, first, second))
    counts: list[tuple[int | None, int | None]] = []
    for _ in raw:
        entry = field().decode("utf-8", "replace")
        added, deleted, path = entry.split("\t", 2)
        if path == "":
            field(), field()
        counts.append((_count(added), _count(deleted)))
    patch = out[pos + 1 :] if pos < len(out) and out[pos : pos + 1] == b"\0" else out[pos:]
    parts = _split_patch(patch.decode("utf-8", "replace"))
    if len(parts) != len(raw):
        raise GitError(f"git diff printed {len(parts)} patch parts for {len(raw)} changed files")
    files = tuple(_changed_file(entry, count) for entry, count in zip(raw, counts, strict=True))
    return PullRequestDiff(files=files, file_patches=tuple(parts))


def _changed_file(
    entry: tuple[str, str, str, str, str, str, str | None], count: tuple[int | None, int | None]
) -> ChangedFile:
    old_mode, new_mode, old_sha, new_sha, status, first, second = entry
    kind = status[0]
    submodule = _GITLINK_MODE in (old_mode, new_mode)
    old = None if old_sha == NULL_SHA else old_sha
    new = None if new_sha == NULL_SHA else new_sha
    added, deleted = count
    binary = added is None and deleted is None and not submodule
    if kind == "R" or kind == "C":
        # A copy keeps its source; for our purposes the new file is an addition with a known origin.
        return ChangedFile(
            second or first,
            first,
            "R" if kind == "R" else "A",
            old if kind == "R" else None,
            new,
            binary,
            submodule,
            added,
            deleted,
        )
    if kind == "D":
        return ChangedFile(first, first, "D", old, None, binary, submodule, added, deleted)
    if kind == "A":
        return ChangedFile(first, None, "A", None, new, binary, submodule, added, deleted)
    # M, T (type change) and anything else git may invent are modifications of one path.
    return ChangedFile(first, None, "M", old, new, binary, submodule, added, deleted)


def _split_patch(patch: str) -> list[str]:
    if not patch:
        return []
    # Content lines carry a ' ', '+' or '-' prefix, so only a file header starts with "diff --git ".
    marker = "\ndiff --git "
    parts: list[str] = []
    start = 0
    while True:
        nxt = patch.find(marker, start)
        if nxt < 0:
            parts.append(patch[start:])
            return parts
        parts.append(patch[start : nxt + 1])
        start = nxt + 1


def _path(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _count(text: str) -> int | None:
    return None if text == "-" else int(text)
