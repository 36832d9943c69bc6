"""The commits of a pull request, read with ``git log`` from its merge base to its head.

Owns commit messages (issue links may live there) and the PR's first commit time (the cut-off
for issue "hints"). It must never consult the GitHub API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from swerl_core.git.command import run_git


@dataclass(frozen=True)
class Commit:
    """One commit of a PR: SHA, author time and full message."""

    sha: str
    authored_at: datetime
    message: str


def pull_request_commits(git_dir: Path, merge_base_sha: str, head_sha: str) -> list[Commit]:
    """Commits reachable from ``head_sha`` but not from ``merge_base_sha``, oldest first."""
    out = run_git(
        git_dir,
        [
            "log",
            "-z",
            "--reverse",
            "--no-color",
            "--format=%H%n%aI%n%B",
            f"{merge_base_sha}..{head_sha}",
            "--",
        ],
    )
    commits = []
    for record in out.split(b"\0"):
        if not record.strip():
            continue
        sha, authored, message = (record.split(b"\n", 2) + [b"", b""])[:3]
        commits.append(
            Commit(
                sha=sha.decode(),
                authored_at=datetime.fromisoformat(authored.decode()),
                message=message.decode("utf-8", "replace").strip(),
            )
        )
    return commits


def first_commit_time(commits: list[Commit]) -> datetime | None:
    """The earliest author time among ``commits`` (rebases keep author times), or None."""
    return min((c.authored_at for c in commits), default=None)
