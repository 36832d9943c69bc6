"""Evaluation checkouts that cannot see the future: a repository holding only the history up to the base commit.

A mirror holds every ref, tag and pack of the repository, including the commit that fixes the task; a
plain clone or worktree of it hands all of that to whatever runs in the checkout (``git log --all``,
``git show <tag>``, or reading the pack files). :func:`isolated_checkout` instead fetches the single
base commit into a fresh repository, without tags, so the only objects it holds are those reachable
from the base commit, and checks it: :func:`future_objects` lists any object or ref not reachable from
the base commit (empty for an isolated checkout). The mirror is never written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from swerl_core.git.command import run_git
from swerl_core.git.errors import GitError

_UPLOAD_PACK = "git -c uploadpack.allowAnySHA1InWant=true upload-pack"  # fetch one commit by its id


def isolated_checkout(mirror_git_dir: Path, base_commit: str, dest: Path) -> Path:
    """A working tree of ``base_commit`` at ``dest`` whose repository holds nothing after it; returns ``dest``.

    Raises :class:`GitError` when the commit is not in the mirror or when the result still reaches
    anything beyond the base commit.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    git_dir = dest / ".git"
    run_git(None, ["init", "--quiet", str(dest)])
    run_git(
        git_dir,
        ["fetch", "--quiet", "--no-tags", "--upload-pack", _UPLOAD_PACK, str(mirror_git_dir), base_commit],
    )
    run_git(git_dir, ["--work-tree", str(dest), "checkout", "--quiet", "--detach", base_commit])
    run_git(git_dir, ["update-ref", "-d", "FETCH_HEAD"], ok_codes=(0, 1))
    leaked = future_objects(git_dir, base_commit)
    if leaked:
        raise GitError(f"checkout of {base_commit[:12]} still reaches {len(leaked)} objects or refs after it")
    return dest


def future_objects(git_dir: Path, base_commit: str) -> list[str]:
    """Refs and stored objects (loose or packed) of ``git_dir`` that are not reachable from ``base_commit``."""
    reachable = {
        line.split()[0] for line in run_git(git_dir, ["rev-list", "--objects", base_commit]).decode().splitlines()
    }
    refs = run_git(git_dir, ["for-each-ref", "--format=%(objectname) %(refname)"]).decode().splitlines()
    leaked = [f"ref {name}" for sha, name in (r.split(" ", 1) for r in refs if r) if sha not in reachable]
    stored = run_git(git_dir, ["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"]).decode().split()
    return leaked + [sha for sha in stored if sha not in reachable]
