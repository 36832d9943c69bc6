"""The code of pull requests, from the mirror: merge base, changed files, patches, commits, blobs.

Runs git for many PRs at once (threads: git does the work in child processes) and reads every
needed blob of a batch in one ``cat-file`` pass. A PR whose git data cannot be computed becomes a
:class:`CodeSkip` with a reason; this module must never call the GitHub API or write the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from swerl_core.file_kinds import is_test_path
from swerl_core.git import (
    ChangedFile,
    Commit,
    GitError,
    PullRequestDiff,
    decode_blob,
    merge_base,
    pull_request_commits,
    pull_request_diff,
    read_blobs,
)
from swerl_core.store.records import BlobRecord, FileRecord


@dataclass(frozen=True)
class PullCode:
    """What git says about one PR: its merge base, diff and commits (oldest first)."""

    merge_base_sha: str
    diff: PullRequestDiff
    commits: tuple[Commit, ...]


@dataclass(frozen=True)
class CodeSkip:
    """Why a PR's code could not be taken from git."""

    reason: str
    detail: str | None = None


def pull_code(git_dir: Path, base_sha: str, head_sha: str) -> PullCode | CodeSkip:
    """Merge base, cumulative diff and commits of one PR (its base and head must be in the mirror)."""
    try:
        base = merge_base(git_dir, base_sha, head_sha)
        if base is None:
            return CodeSkip("no_merge_base", "base and head share no history")
        diff = pull_request_diff(git_dir, base, head_sha)
        commits = pull_request_commits(git_dir, base, head_sha)
    except GitError as exc:
        return CodeSkip("git_error", str(exc))
    return PullCode(base, diff, tuple(commits))


def pulls_code(git_dir: Path, pairs: Sequence[tuple[int, str, str]], workers: int) -> dict[int, PullCode | CodeSkip]:
    """:func:`pull_code` for many ``(number, base_sha, head_sha)`` at once on ``workers`` threads."""
    if workers <= 1 or len(pairs) <= 1:
        return {number: pull_code(git_dir, base, head) for number, base, head in pairs}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swerl-git") as pool:
        results = pool.map(lambda p: (p[0], pull_code(git_dir, p[1], p[2])), pairs)
        return dict(results)


def blob_shas(files: Iterable[ChangedFile]) -> set[str]:
    """Every old and new blob SHA of ``files`` (submodule entries point at commits, not blobs)."""
    shas: set[str] = set()
    for f in files:
        if f.is_submodule:
            continue
        shas.update(s for s in (f.old_blob_sha, f.new_blob_sha) if s)
    return shas


def file_records(diff: PullRequestDiff, sizes: dict[str, int]) -> tuple[FileRecord, ...]:
    """Rows of ``pr_files`` for one diff, with blob sizes looked up in ``sizes``."""
    return tuple(
        FileRecord(
            path=f.path,
            old_path=f.old_path,
            status=f.status,
            is_binary=f.is_binary,
            is_test=is_test_path(f.path),
            old_blob_sha=f.old_blob_sha,
            new_blob_sha=f.new_blob_sha,
            old_size=sizes.get(f.old_blob_sha) if f.old_blob_sha else None,
            new_size=sizes.get(f.new_blob_sha) if f.new_blob_sha else None,
            additions=f.additions,
            deletions=f.deletions,
        )
        for f in diff.files
    )


def blob_records(
    git_dir: Path,
    files: Iterable[ChangedFile],
    wanted: set[str],
    sizes: dict[str, int],
    max_bytes: int,
) -> list[BlobRecord]:
    """Content rows for the ``wanted`` blobs of ``files``: binary and too-large ones without content.

    Only text blobs within ``max_bytes`` are read, all in one ``git cat-file --batch``.
    """
    binary = {s for f in files if f.is_binary for s in (f.old_blob_sha, f.new_blob_sha) if s}
    records: list[BlobRecord] = []
    to_read: list[str] = []
    for sha in sorted(wanted):
        size = sizes.get(sha)
        if size is None:
            continue
        if sha in binary:
            records.append(BlobRecord(sha, size, True, False, False, None))
        elif size > max_bytes:
            records.append(BlobRecord(sha, size, False, False, True, None))
        else:
            to_read.append(sha)
    for sha, data in read_blobs(git_dir, to_read).items():
        blob = decode_blob(sha, data, max_bytes)
        records.append(BlobRecord(sha, blob.size, blob.is_binary, blob.invalid_utf8, blob.too_large, blob.text))
    return records
