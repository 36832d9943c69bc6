"""Bare mirrors of GitHub repositories under ``$SWERL_HOME/mirrors/<owner>__<name>.git``.

A mirror tracks the ``clone_url`` the API reports and fetches branches and ``refs/pull/*/head``
incrementally, which is how every PR head commit (even from a fork) reaches us without the API.
This module must never write credentials into the mirror's config: an HTTPS token is passed for
one fetch through the environment only.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from swerl_core.config import Secret
from swerl_core.git.command import first_error_line, git_argv, git_env, run_git
from swerl_core.git.errors import GitError

FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/pull/*/head:refs/pull/*/head")
"""What a mirror fetches: every branch and every pull request head."""


def mirror_path(mirrors_dir: Path, repo: str) -> Path:
    """Where the bare mirror of ``owner/name`` lives."""
    owner, _, name = repo.partition("/")
    return mirrors_dir / f"{owner}__{name}.git"


class Mirror:
    """A bare git repository mirroring one GitHub repository."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def sync(self, clone_url: str, token: Secret | None = None, token_hosts: Iterable[str] = ()) -> None:
        """Create the mirror if needed, point it at ``clone_url`` and fetch branches and PR heads.

        ``token`` is sent (as an HTTP header in the child's environment) only when ``clone_url`` is
        HTTPS on one of ``token_hosts``.
        """
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            run_git(None, ["init", "--quiet", "--bare", str(self.path)])
        run_git(self.path, ["config", "remote.origin.url", clone_url])
        run_git(self.path, ["config", "--unset-all", "remote.origin.fetch"], ok_codes=(0, 5))
        for spec in FETCH_REFSPECS:
            run_git(self.path, ["config", "--add", "remote.origin.fetch", spec])
        env = _auth_env(clone_url, token, set(token_hosts))
        proc = subprocess.run(
            git_argv(self.path, ["fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "origin"]),
            capture_output=True,
            env=git_env(env),
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"cannot fetch {_safe_url(clone_url)}: {first_error_line(proc.stderr)}")

    def missing_commits(self, shas: Iterable[str]) -> set[str]:
        """Which of ``shas`` are not commits present in the mirror (one git process for all)."""
        wanted = sorted({s for s in shas if s})
        if not wanted:
            return set()
        out = run_git(
            self.path,
            ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            input="".join(f"{sha}^{{commit}}\n" for sha in wanted).encode(),
        )
        present = set()
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "commit":
                present.add(parts[0])
        # The answer names the peeled object; a full SHA of a commit peels to itself.
        return {sha for sha in wanted if sha not in present}


def ref_state(git_dir: Path) -> str | None:
    """A digest of every ref of the mirror at ``git_dir`` and the object it points at; None when there is none.

    Two mirrors with the same state hold the same commits reachable from their refs, so a caller can
    tell "fetched something since" from "unchanged" without reading any object.
    """
    if not (git_dir / "HEAD").exists():
        return None
    refs = run_git(git_dir, ["for-each-ref", "--format=%(objectname) %(refname)"])
    return hashlib.sha256(refs).hexdigest()


def _auth_env(clone_url: str, token: Secret | None, hosts: set[str]) -> dict[str, str]:
    parts = urlsplit(clone_url)
    if token is None or not token or parts.scheme != "https" or parts.hostname not in hosts:
        return {}
    basic = base64.b64encode(f"x-access-token:{token.reveal()}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return parts._replace(netloc=netloc).geturl()
    return url
