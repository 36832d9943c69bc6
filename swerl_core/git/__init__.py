"""Everything about code, from git: mirrors, ``refs/pull/*``, merge bases, changed files, blobs, patches.

Never calls the GitHub API; every function takes the path of a bare mirror.
"""

from swerl_core.git.blobs import BlobContent, decode_blob, object_sizes, read_blobs
from swerl_core.git.changes import (
    ChangedFile,
    PullRequestDiff,
    merge_base,
    parse_diff_output,
    pull_request_diff,
)
from swerl_core.git.command import run_git
from swerl_core.git.errors import GitError
from swerl_core.git.history import Commit, first_commit_time, pull_request_commits
from swerl_core.git.mirror import FETCH_REFSPECS, Mirror, mirror_path, ref_state

__all__ = [
    "FETCH_REFSPECS",
    "BlobContent",
    "ChangedFile",
    "Commit",
    "GitError",
    "Mirror",
    "PullRequestDiff",
    "decode_blob",
    "first_commit_time",
    "merge_base",
    "mirror_path",
    "object_sizes",
    "parse_diff_output",
    "pull_request_commits",
    "pull_request_diff",
    "read_blobs",
    "ref_state",
    "run_git",
]
