"""The offline sample world: GitHub-shaped records plus the real git repositories behind them.

Owns three things:

* the vocabulary for describing a repository's history as data — accounts, file operations,
  issues, pull requests, comments (``*Spec`` classes) — and the records the fake GitHub server
  serves (``*Record`` classes, :class:`RepoData`);
* the builder that turns such data into bare git repositories with deterministic SHAs through one
  ``git fast-import`` stream per build (fixed names, emails and dates; no user configuration read);
* the sample world itself: ``acme/textkit``, a small real Python library with about thirty issues and
  fixing pull requests, and ``other/lib``, a second repository for cross-repository references.
  :data:`EDGE_CASES` names the issue/pull-request numbers that exhibit each case an ingester must handle.

It never talks to the network and never writes outside the root directory it is given.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import struct
import types
import typing
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from filelock import FileLock

from swerl_core.errors import SwerlError
from swerl_core.git import command
from swerl_core.git.command import GitError

__all__ = [
    "EDGE_CASES",
    "LATER_BATCHES",
    "SAMPLE_REPOS",
    "Account",
    "Append",
    "CommentRecord",
    "CommentSpec",
    "CommitRecord",
    "CommitSpec",
    "DemoError",
    "Delete",
    "Edit",
    "FileOp",
    "HistoryBatch",
    "IssueRecord",
    "IssueSpec",
    "PullRecord",
    "PullSpec",
    "PushSpec",
    "Rename",
    "RepoData",
    "RepoSpec",
    "SampleWorld",
    "World",
    "Write",
    "build_repo",
    "build_repos",
    "build_world",
    "find_repo",
    "load_repos",
    "parse_issue_ref",
    "read_files",
    "run_git",
    "save_repos",
]


class DemoError(SwerlError):
    """A sample-world or fake-server problem, with a one-line message naming what is wrong."""


# --------------------------------------------------------------------------------------------------
# git plumbing
# --------------------------------------------------------------------------------------------------


# git ignores the user's global configuration here: the sample world must come out the same on every machine.
ISOLATED_GIT = {"GIT_CONFIG_GLOBAL": os.devnull}


def run_git(git_dir: Path | None, *args: str, input: bytes | None = None) -> bytes:
    """``git --git-dir=git_dir args…`` through :func:`swerl_core.git.command.run_git`, isolated from user config."""
    return command.run_git(git_dir, args, input=input, env=ISOLATED_GIT)


def to_epoch(stamp: str) -> int:
    """Seconds since the epoch for an ISO-8601 UTC timestamp such as ``2025-01-08T14:03:00Z``."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


@dataclass(frozen=True)
class Signature:
    """A git author or committer line: name, email and an ISO-8601 UTC time."""

    name: str
    email: str
    at: str

    def line(self) -> bytes:
        """The ``Name <email> epoch +0000`` form git fast-import reads."""
        return f"{self.name} <{self.email}> {to_epoch(self.at)} +0000".encode()


GITHUB_COMMITTER = ("GitHub", "noreply@github.com")
MAIN_LINE = "refs/swerl/main"  # fast-import's working branches; deleted once the import is done
SIDE_LINE = "refs/swerl/side"
Rev = int | str  # a fast-import mark (int) or a full commit SHA (str)


class FastImport:
    """Collects one ``git fast-import`` stream of commits and refs and runs it into a bare repository.

    Commits go on working branches. A commit that continues its branch's tip, or starts from another
    branch's tip, lets fast-import reuse the tree it holds in memory instead of re-reading it from the
    pack: this is what keeps thousands of commits at a few seconds.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._marks = 0
        self._tips: dict[str, Rev] = {}
        self._refs: dict[str, Rev] = {}

    def commit(
        self,
        branch: str,
        parents: Sequence[Rev],
        changes: Mapping[str, bytes | None],
        message: str,
        author: Signature,
        committer: Signature,
    ) -> int:
        """Queue a commit on ``branch`` whose tree is its first parent's plus ``changes`` (``None`` deletes).

        Returns the commit's mark.
        """
        self._marks += 1
        out = [f"reset {branch}\n\n".encode()] if not parents and branch in self._tips else []
        out += [
            f"commit {branch}\nmark :{self._marks}\n".encode(),
            b"author " + author.line() + b"\n",
            b"committer " + committer.line() + b"\n",
            _data(message.encode()),
        ]
        if parents and parents[0] != self._tips.get(branch):
            source = next((name for name, tip in self._tips.items() if tip == parents[0]), None)
            out.append(f"from {source or _rev(parents[0])}\n".encode())
        out += [f"merge {_rev(rev)}\n".encode() for rev in parents[1:]]
        for path in sorted(changes):
            _check_path(path)
            content = changes[path]
            out.append(
                f"D {path}\n".encode() if content is None else f"M 100644 inline {path}\n".encode() + _data(content)
            )
        self._parts.append(b"".join(out) + b"\n")
        self._tips[branch] = self._marks
        return self._marks

    def ref(self, name: str, rev: Rev) -> None:
        """Set ref ``name`` to ``rev`` once the stream has run."""
        self._refs[name] = rev

    def run(self, bare: Path) -> dict[int, str]:
        """Feed the stream to ``git fast-import`` in ``bare``, set the refs; return each mark's commit SHA."""
        marks_file = bare / "swerl-import.marks"
        stream = b"".join(self._parts) + b"done\n"
        run_git(
            bare, "fast-import", "--quiet", "--date-format=raw", "--done", f"--export-marks={marks_file}", input=stream
        )
        marks = {int(mark[1:]): sha for mark, sha in (line.split() for line in marks_file.read_text().splitlines())}
        marks_file.unlink()
        deletes = "".join(f"delete {name}\n" for name in self._tips)
        run_git(bare, "update-ref", "--stdin", input=deletes.encode())
        with contextlib.suppress(OSError):
            (bare / "refs" / "swerl").rmdir()
        write_refs(bare, {name: marks[rev] if isinstance(rev, int) else rev for name, rev in self._refs.items()})
        return marks


def write_refs(bare: Path, updates: Mapping[str, str]) -> None:
    """Set many refs of ``bare`` at once by rewriting its ``packed-refs`` file.

    As loose files, thousands of ``refs/pull/N/head`` cost a directory, a lock and a rename each, which
    dominated the build of large repositories; ``packed-refs`` (git's own format, gitrepository-layout(5))
    takes one write. Loose copies of the updated names are removed so the packed values are the ones seen.
    """
    listing = run_git(bare, "for-each-ref", "--format=%(objectname) %(refname)").decode().splitlines()
    refs = {name: sha for sha, name in (line.split(" ", 1) for line in listing)}
    refs.update(updates)
    for name in updates:
        (bare / name).unlink(missing_ok=True)
    lock = bare / "packed-refs.lock"
    lock.write_text("# pack-refs with: sorted \n" + "".join(f"{refs[n]} {n}\n" for n in sorted(refs)))
    lock.replace(bare / "packed-refs")


def _data(payload: bytes) -> bytes:
    return f"data {len(payload)}\n".encode() + payload + b"\n"


def _rev(rev: Rev) -> str:
    return f":{rev}" if isinstance(rev, int) else rev


def _check_path(path: str) -> None:
    if not path or path.startswith(("/", '"')) or "\n" in path or "//" in path:
        raise DemoError(f"unsupported path in sample data: {path!r}")


def commit_trees(bare: Path, shas: Iterable[str]) -> dict[str, str]:
    """Map each commit SHA to its tree SHA with one ``git log`` call."""
    wanted = "\n".join(shas)
    if not wanted:
        return {}
    out = run_git(bare, "log", "--no-walk=unsorted", "--stdin", "--format=%H %T", input=wanted.encode())
    return dict(line.split() for line in out.decode().splitlines())


def read_files(bare: Path, rev: str) -> dict[str, bytes]:
    """Every file of commit ``rev`` as ``{path: content}``, with two git calls."""
    entries = [line.split(b"\t", 1) for line in run_git(bare, "ls-tree", "-r", "-z", rev).split(b"\0") if line]
    blobs = [(meta.split()[2].decode(), path.decode()) for meta, path in entries]
    out = run_git(bare, "cat-file", "--batch", input="".join(f"{sha}\n" for sha, _ in blobs).encode())
    files: dict[str, bytes] = {}
    pos = 0
    for _, path in blobs:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        files[path] = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    return files


# --------------------------------------------------------------------------------------------------
# describing history as data
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A GitHub account as the REST API shows it in ``user`` objects, plus its git identity."""

    login: str
    id: int
    type: str = "User"
    name: str = ""
    association: str = "CONTRIBUTOR"

    @property
    def email(self) -> str:
        """The ``users.noreply.github.com`` address GitHub gives the account."""
        return f"{self.id}+{self.login}@users.noreply.github.com"

    def signature(self, at: str) -> Signature:
        """This account as a git author at time ``at``."""
        return Signature(self.name or self.login, self.email, at)


def _encode(text: str | bytes, encoding: str, newline: str) -> bytes:
    if isinstance(text, bytes):
        return text
    return text.replace("\n", newline).encode(encoding)


@dataclass(frozen=True)
class Write:
    """Create or overwrite a file; text is encoded with ``encoding`` and ``newline`` line endings."""

    path: str
    content: str | bytes
    encoding: str = "utf-8"
    newline: str = "\n"

    def apply(self, files: dict[str, bytes]) -> tuple[str, ...]:
        """Apply to ``files`` in place; return the paths touched."""
        files[self.path] = _encode(self.content, self.encoding, self.newline)
        return (self.path,)


@dataclass(frozen=True)
class Edit:
    """Replace the one occurrence of ``old`` in a file by ``new`` (a search/replace edit)."""

    path: str
    old: str
    new: str
    encoding: str = "utf-8"
    newline: str = "\n"

    def apply(self, files: dict[str, bytes]) -> tuple[str, ...]:
        """Apply to ``files`` in place; return the paths touched."""
        content = files.get(self.path)
        if content is None:
            raise DemoError(f"edit of missing file {self.path}")
        old, new = (_encode(s, self.encoding, self.newline) for s in (self.old, self.new))
        found = content.count(old)
        if found != 1:
            raise DemoError(f"{self.path}: edited text found {found} times, expected once: {self.old[:60]!r}")
        files[self.path] = content.replace(old, new)
        return (self.path,)


@dataclass(frozen=True)
class Append:
    """Append text to the end of an existing file."""

    path: str
    text: str
    encoding: str = "utf-8"
    newline: str = "\n"

    def apply(self, files: dict[str, bytes]) -> tuple[str, ...]:
        """Apply to ``files`` in place; return the paths touched."""
        if self.path not in files:
            raise DemoError(f"append to missing file {self.path}")
        files[self.path] += _encode(self.text, self.encoding, self.newline)
        return (self.path,)


@dataclass(frozen=True)
class Delete:
    """Delete a file."""

    path: str

    def apply(self, files: dict[str, bytes]) -> tuple[str, ...]:
        """Apply to ``files`` in place; return the paths touched."""
        if files.pop(self.path, None) is None:
            raise DemoError(f"delete of missing file {self.path}")
        return (self.path,)


@dataclass(frozen=True)
class Rename:
    """Move a file to a new path, content unchanged (follow with an :class:`Edit` to change it)."""

    old: str
    new: str

    def apply(self, files: dict[str, bytes]) -> tuple[str, ...]:
        """Apply to ``files`` in place; return the paths touched."""
        if self.old not in files or self.new in files:
            raise DemoError(f"cannot rename {self.old} to {self.new}")
        files[self.new] = files.pop(self.old)
        return (self.old, self.new)


FileOp = Write | Edit | Append | Delete | Rename


def apply_ops(files: dict[str, bytes], ops: Iterable[FileOp]) -> set[str]:
    """Apply ``ops`` to ``files`` in place and return every path they touched."""
    touched: set[str] = set()
    for op in ops:
        touched.update(op.apply(files))
    return touched


@dataclass(frozen=True)
class CommentSpec:
    """A conversation comment on an issue or pull request."""

    author: Account
    at: str
    body: str


@dataclass(frozen=True)
class IssueSpec:
    """An issue. ``fate`` ``deleted`` makes the API answer 410; ``moved_to`` ("owner/repo#n") 301.

    ``closed_at`` may be left empty for issues a merged pull request closes: the builder fills it in.
    ``transferred_from`` marks the copy of a transferred issue in its new repository.
    """

    number: int
    title: str
    body: str | None
    author: Account
    created_at: str
    labels: tuple[str, ...] = ()
    comments: tuple[CommentSpec, ...] = ()
    closed_at: str | None = None
    state_reason: str | None = None
    fate: Literal["live", "deleted"] = "live"
    moved_to: str | None = None
    transferred_from: str | None = None


@dataclass(frozen=True)
class CommitSpec:
    """One commit on a pull-request branch (or pushed to the default branch)."""

    message: str
    at: str
    ops: tuple[FileOp, ...]
    author: Account | None = None


@dataclass(frozen=True)
class PullSpec:
    """A pull request: its branch commits, how it ended, and its true closing-issue references.

    ``closes`` lists what GitHub's GraphQL ``closingIssuesReferences`` reports ("owner/repo#n"): keywords
    in the body (not inside HTML comments, issues only) plus issues linked in the sidebar; never
    commit-message keywords. ``head_missing`` deletes the head commits from the remote after the build
    (a force-push followed by branch deletion) while the API keeps reporting the head SHA.
    """

    number: int
    title: str
    body: str | None
    author: Account
    created_at: str
    branch: str
    commits: tuple[CommitSpec, ...]
    outcome: Literal["merged", "open", "draft", "closed"] = "merged"
    merge: Literal["merge", "squash"] = "merge"
    closed_at: str | None = None
    merged_by: Account | None = None
    labels: tuple[str, ...] = ()
    comments: tuple[CommentSpec, ...] = ()
    closes: tuple[str, ...] = ()
    fork_owner: Account | None = None
    fork_deleted: bool = False
    head_missing: bool = False


@dataclass(frozen=True)
class PushSpec:
    """A commit pushed straight to the default branch, without a pull request."""

    commit: CommitSpec
    author: Account


@dataclass(frozen=True)
class RepoSpec:
    """A whole repository as data: its first commit, direct pushes, issues and pull requests."""

    full_name: str
    id: int
    owner: Account
    description: str
    created_at: str
    initial: PushSpec
    issues: tuple[IssueSpec, ...] = ()
    pulls: tuple[PullSpec, ...] = ()
    pushes: tuple[PushSpec, ...] = ()
    default_branch: str = "main"


# --------------------------------------------------------------------------------------------------
# records served by the fake GitHub server
# --------------------------------------------------------------------------------------------------


@dataclass
class CommentRecord:
    """An issue comment (pull-request conversation comments are issue comments too)."""

    id: int
    issue_number: int
    user: Account
    body: str
    created_at: str
    updated_at: str


@dataclass
class IssueRecord:
    """An issue as the API reports it (pull requests are kept separately as :class:`PullRecord`)."""

    number: int
    id: int
    title: str
    body: str | None
    user: Account
    labels: list[str]
    state: str
    state_reason: str | None
    created_at: str
    updated_at: str
    closed_at: str | None


@dataclass
class CommitRecord:
    """A commit of a pull request, as ``GET /pulls/{n}/commits`` reports it."""

    sha: str
    tree: str
    parents: list[str]
    message: str
    author: Account | None
    author_name: str
    author_email: str
    authored_at: str
    committer_name: str
    committer_email: str
    committed_at: str


@dataclass
class PullRecord:
    """A pull request as the API reports it.

    ``base_sha`` is the default-branch commit the branch was started from; ``merge_commit_sha`` is the
    merge or squash commit of a merged pull request and the test-merge commit (``refs/pull/N/merge``) of an
    open one. ``stored_diff``/``stored_patch`` are kept only when git no longer has the head commit.
    """

    number: int
    id: int
    title: str
    body: str | None
    user: Account
    labels: list[str]
    state: str
    draft: bool
    created_at: str
    updated_at: str
    closed_at: str | None
    merged_at: str | None
    merged_by: Account | None
    merge_commit_sha: str | None
    head_ref: str
    head_sha: str
    head_owner: Account
    head_repo: str | None
    base_ref: str
    base_sha: str
    commits: list[CommitRecord]
    closing_issues: list[str]
    stored_diff: str | None = None
    stored_patch: str | None = None

    @property
    def merged(self) -> bool:
        """Whether the pull request was merged."""
        return self.merged_at is not None


@dataclass
class RepoData:
    """One repository: its bare git remote and every API record the fake server serves for it.

    ``version`` grows on every change so servers can drop cached pages; ``former_names`` answer 301.
    """

    full_name: str
    id: int
    owner: Account
    bare_path: Path
    description: str
    created_at: str
    pushed_at: str
    default_branch: str = "main"
    issues: dict[int, IssueRecord] = field(default_factory=dict)
    pulls: dict[int, PullRecord] = field(default_factory=dict)
    comments: list[CommentRecord] = field(default_factory=list)
    deleted_issues: list[int] = field(default_factory=list)
    moved_issues: dict[int, str] = field(default_factory=dict)
    former_names: list[str] = field(default_factory=list)
    version: int = 0

    @property
    def clone_url(self) -> str:
        """The git remote: the bare repository's absolute path (``git clone`` accepts it)."""
        return str(self.bare_path)

    @property
    def name(self) -> str:
        """The repository name without its owner."""
        return self.full_name.split("/", 1)[1]

    def comments_on(self, number: int) -> list[CommentRecord]:
        """The comments on issue or pull request ``number``, oldest first."""
        return [c for c in self.comments if c.issue_number == number]

    def touch(self) -> None:
        """Record a change, so servers re-index this repository."""
        self.version += 1


# --------------------------------------------------------------------------------------------------
# JSON persistence of records
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


def _to_jsonable(value: Any, base: Path) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_jsonable(getattr(value, f.name), base) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return os.path.relpath(value, base)
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v, base) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v, base) for v in value]
    return value


def _from_jsonable(kind: Any, value: Any, base: Path) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        return _from_jsonable(next(a for a in args if a is not type(None)), value, base)
    if origin is list:
        return [_from_jsonable(args[0], v, base) for v in value]
    if origin is dict:
        return {_from_jsonable(args[0], k, base): _from_jsonable(args[1], v, base) for k, v in value.items()}
    if kind is Path:
        return (base / value).resolve()
    if kind is int:
        return int(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return kind(
            **{name: _from_jsonable(hint, value[name], base) for name, hint in _field_hints(kind) if name in value}
        )
    return value


@functools.cache
def _field_hints(kind: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(kind)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(kind))


def save_repos(path: Path, repos: Iterable[RepoData], content_hash: str) -> None:
    """Write ``repos`` to ``path`` as JSON (paths relative to its folder), tagged with ``content_hash``."""
    doc = {"content_hash": content_hash, "repos": [_to_jsonable(r, path.parent) for r in repos]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=True))
    tmp.replace(path)


def load_repos(path: Path) -> tuple[str, list[RepoData]]:
    """Read what :func:`save_repos` wrote: the content hash and the repositories."""
    doc = json.loads(path.read_text())
    return doc["content_hash"], [_from_jsonable(RepoData, r, path.parent) for r in doc["repos"]]


# --------------------------------------------------------------------------------------------------
# building repositories from specs
# --------------------------------------------------------------------------------------------------

DIFF_ARGS = ("-p", "-M", "--full-index", "--no-color")
_ISSUE_ID_STRIDE = 1_000_000
_PULL_ID_OFFSET = 500_000
_COMMENT_ID_STRIDE = 10_000_000


@dataclass
class _Branch:
    """A pull request's branch as built: the commit it started from and the marks of its commits."""

    pull: PullSpec
    base: Rev
    marks: list[int]


class _History:
    """Replays pushes, pull-request branches and merges in time order into one fast-import stream."""

    def __init__(self, writer: FastImport, main: Rev | None, files: dict[str, bytes], owner: Account) -> None:
        self.writer, self.main, self.files, self.owner = writer, main, files, owner
        self.branches: dict[int, _Branch] = {}
        self.merges: dict[int, int] = {}
        self.last_at = ""

    def replay(self, pushes: Sequence[PushSpec], pulls: Sequence[PullSpec]) -> None:
        """Build every push and pull request in time order, then the test merges of open ones."""
        events: list[tuple[str, int, int, PushSpec | PullSpec]] = [
            (push.commit.at, 0, i, push) for i, push in enumerate(pushes)
        ]
        for pull in pulls:
            _check_pull(pull)
            events.append((pull.commits[0].at, 1, pull.number, pull))
            if pull.outcome == "merged":
                events.append((pull.closed_at or "", 2, pull.number, pull))
        for at, kind, _, item in sorted(events, key=lambda e: e[:3]):
            self.last_at = max(self.last_at, at)
            if isinstance(item, PushSpec):
                self._push(item)
            elif kind == 1:
                self._branch(item)
            else:
                self._merge(item)
        for pull in pulls:
            if pull.outcome in ("open", "draft"):
                self._test_merge(pull)

    def publish(self, default_branch: str) -> None:
        """Queue the refs GitHub keeps: the default branch, ``refs/pull/N/head``, open branches."""
        if self.main is not None:
            self.writer.ref(f"refs/heads/{default_branch}", self.main)
        for number, branch in self.branches.items():
            pull = branch.pull
            if not pull.head_missing:
                self.writer.ref(f"refs/pull/{number}/head", branch.marks[-1])
            if pull.outcome in ("open", "draft") and pull.fork_owner is None:
                self.writer.ref(f"refs/heads/{pull.branch}", branch.marks[-1])

    def head_login(self, pull: PullSpec) -> str:
        """The owner of the repository the pull request's branch lives in."""
        return (pull.fork_owner or self.owner).login

    def _push(self, push: PushSpec) -> None:
        touched = apply_ops(self.files, push.commit.ops)
        sig = push.author.signature(push.commit.at)
        parents = [] if self.main is None else [self.main]
        self.main = self.writer.commit(MAIN_LINE, parents, _changes(self.files, touched), push.commit.message, sig, sig)

    def _branch(self, pull: PullSpec) -> None:
        if self.main is None:
            raise DemoError(f"pull request #{pull.number} starts before the repository's first commit")
        files, parent, marks = dict(self.files), self.main, []
        for commit in pull.commits:
            touched = apply_ops(files, commit.ops)
            sig = (commit.author or pull.author).signature(commit.at)
            parent = self.writer.commit(SIDE_LINE, [parent], _changes(files, touched), commit.message, sig, sig)
            marks.append(parent)
        self.branches[pull.number] = _Branch(pull, self.main, marks)

    def _main_tip(self, pull: PullSpec) -> Rev:
        if self.main is None:
            raise DemoError(f"pull request #{pull.number} merges before the repository's first commit")
        return self.main

    def _merge(self, pull: PullSpec) -> None:
        branch, at, main = self.branches[pull.number], pull.closed_at or "", self._main_tip(pull)
        touched = apply_ops(self.files, [op for c in pull.commits for op in c.ops])
        committer = Signature(*GITHUB_COMMITTER, at)
        if pull.merge == "merge":
            message = f"Merge pull request #{pull.number} from {self.head_login(pull)}/{pull.branch}\n\n{pull.title}"
            author, parents = (pull.merged_by or pull.author).signature(at), [main, branch.marks[-1]]
        else:
            listed = "\n\n".join(f"* {c.message}" for c in pull.commits)
            message = f"{pull.title} (#{pull.number})\n\n{listed}"
            author, parents = pull.author.signature(at), [main]
        self.main = self.writer.commit(MAIN_LINE, parents, _changes(self.files, touched), message, author, committer)
        self.merges[pull.number] = self.main

    def _test_merge(self, pull: PullSpec) -> None:
        branch, files = self.branches[pull.number], dict(self.files)
        touched = apply_ops(files, [op for c in pull.commits for op in c.ops])
        at = max(self.last_at, pull.commits[-1].at)
        sig = Signature(*GITHUB_COMMITTER, at)
        message = f"Merge {self.head_login(pull)}:{pull.branch} into {self.owner.login}:main (test merge)"
        parents = [self._main_tip(pull), branch.marks[-1]]
        mark = self.writer.commit(SIDE_LINE, parents, _changes(files, touched), message, sig, sig)
        self.merges[pull.number] = mark
        self.writer.ref(f"refs/pull/{pull.number}/merge", mark)


def _changes(files: Mapping[str, bytes], touched: Iterable[str]) -> dict[str, bytes | None]:
    return {path: files.get(path) for path in touched}


def _check_pull(pull: PullSpec) -> None:
    if not pull.commits:
        raise DemoError(f"pull request #{pull.number} has no commits")
    if pull.outcome in ("merged", "closed") and not pull.closed_at:
        raise DemoError(f"pull request #{pull.number} is {pull.outcome} but has no closed_at")
    if pull.closed_at and pull.closed_at < pull.commits[-1].at:
        raise DemoError(f"pull request #{pull.number} closes before its last commit")
    if pull.head_missing and (pull.outcome != "merged" or pull.merge != "squash"):
        raise DemoError(f"pull request #{pull.number}: a missing head needs a squash merge")


def check_numbers(taken: Iterable[int], issues: Sequence[IssueSpec], pulls: Sequence[PullSpec]) -> None:
    """Check that issue and pull-request numbers are new, unique, and follow creation time like GitHub's."""
    taken = set(taken)
    items = sorted(
        [(i.number, i.created_at, i.transferred_from is None) for i in issues]
        + [(p.number, p.created_at, True) for p in pulls]
    )
    numbers = [n for n, _, _ in items]
    if len(set(numbers)) != len(numbers) or taken & set(numbers):
        raise DemoError(f"duplicate issue/pull-request numbers among {numbers}")
    if taken and numbers and min(numbers) <= max(taken):
        raise DemoError(f"new number {min(numbers)} is not above the existing {max(taken)}")
    ordered = [at for _, at, in_order in items if in_order]
    if ordered != sorted(ordered):
        raise DemoError("issue/pull-request numbers must follow creation time")


def _issue_record(repo_id: int, spec: IssueSpec) -> IssueRecord:
    updated = max([spec.created_at, spec.closed_at or "", *(c.at for c in spec.comments)])
    closed = spec.closed_at is not None
    return IssueRecord(
        number=spec.number,
        id=repo_id * _ISSUE_ID_STRIDE + spec.number,
        title=spec.title,
        body=spec.body,
        user=spec.author,
        labels=list(spec.labels),
        state="closed" if closed else "open",
        state_reason=spec.state_reason or ("completed" if closed else None),
        created_at=spec.created_at,
        updated_at=updated,
        closed_at=spec.closed_at,
    )


def _commit_records(branch: _Branch, shas: Mapping[int, str], trees: Mapping[str, str]) -> list[CommitRecord]:
    records, parent = [], _resolve(branch.base, shas)
    for mark, commit in zip(branch.marks, branch.pull.commits, strict=True):
        who = commit.author or branch.pull.author
        sha = shas[mark]
        records.append(
            CommitRecord(
                sha=sha,
                tree=trees[sha],
                parents=[parent],
                message=commit.message,
                author=who,
                author_name=who.signature(commit.at).name,
                author_email=who.email,
                authored_at=commit.at,
                committer_name=who.signature(commit.at).name,
                committer_email=who.email,
                committed_at=commit.at,
            )
        )
        parent = sha
    return records


def _resolve(rev: Rev, shas: Mapping[int, str]) -> str:
    return shas[rev] if isinstance(rev, int) else rev


def _pull_record(
    repo: RepoData, history: _History, pull: PullSpec, shas: Mapping[int, str], trees: Mapping[str, str]
) -> PullRecord:
    branch = history.branches[pull.number]
    commits = _commit_records(branch, shas, trees)
    merged = pull.outcome == "merged"
    updated = max([pull.created_at, pull.closed_at or "", commits[-1].committed_at, *(c.at for c in pull.comments)])
    head_repo = (
        None if pull.fork_deleted else (f"{pull.fork_owner.login}/{repo.name}" if pull.fork_owner else repo.full_name)
    )
    merge_mark = history.merges.get(pull.number)
    return PullRecord(
        number=pull.number,
        id=repo.id * _ISSUE_ID_STRIDE + _PULL_ID_OFFSET + pull.number,
        title=pull.title,
        body=pull.body,
        user=pull.author,
        labels=list(pull.labels),
        state="open" if pull.outcome in ("open", "draft") else "closed",
        draft=pull.outcome == "draft",
        created_at=pull.created_at,
        updated_at=updated,
        closed_at=pull.closed_at,
        merged_at=pull.closed_at if merged else None,
        merged_by=(pull.merged_by or pull.author) if merged else None,
        merge_commit_sha=shas[merge_mark] if merge_mark is not None else None,
        head_ref=pull.branch,
        head_sha=commits[-1].sha,
        head_owner=pull.fork_owner or repo.owner,
        head_repo=head_repo,
        base_ref=repo.default_branch,
        base_sha=commits[0].parents[0],
        commits=commits,
        closing_issues=list(pull.closes),
    )


def _add_records(
    repo: RepoData,
    issues: Sequence[IssueSpec],
    pulls: Sequence[PullSpec],
    history: _History,
    shas: Mapping[int, str],
    extra_comments: Sequence[tuple[int, CommentSpec]] = (),
) -> list[PullRecord]:
    trees = commit_trees(repo.bare_path, [shas[m] for b in history.branches.values() for m in b.marks])
    threads: list[tuple[int, CommentSpec]] = list(extra_comments)
    for spec in issues:
        if spec.fate == "deleted":
            repo.deleted_issues.append(spec.number)
        elif spec.moved_to:
            repo.moved_issues[spec.number] = spec.moved_to
        else:
            repo.issues[spec.number] = _issue_record(repo.id, spec)
            threads += [(spec.number, c) for c in spec.comments]
    added = []
    for pull in pulls:
        repo.pulls[pull.number] = record = _pull_record(repo, history, pull, shas, trees)
        threads += [(pull.number, c) for c in pull.comments]
        added.append(record)
    _add_comments(repo, threads)
    repo.pushed_at = max(
        [repo.pushed_at, *(c.committed_at for r in added for c in r.commits), *(r.merged_at or "" for r in added)]
    )
    return added


def _add_comments(repo: RepoData, threads: Sequence[tuple[int, CommentSpec]]) -> None:
    next_id = repo.id * _COMMENT_ID_STRIDE + len(repo.comments) + 1
    for offset, (number, spec) in enumerate(sorted(threads, key=lambda t: (t[1].at, t[0]))):
        repo.comments.append(CommentRecord(next_id + offset, number, spec.author, spec.body, spec.at, spec.at))
        _bump_updated(repo, number, spec.at)


def _bump_updated(repo: RepoData, number: int, at: str) -> None:
    target = repo.issues.get(number) or repo.pulls.get(number)
    if target is not None:
        target.updated_at = max(target.updated_at, at)


def _drop_missing_heads(repo: RepoData, pulls: Sequence[PullSpec]) -> None:
    """Keep the diff of pull requests whose head is to vanish, then prune those commits from git."""
    missing = [repo.pulls[p.number] for p in pulls if p.head_missing]
    if not missing:
        return
    for record in missing:
        diff = run_git(repo.bare_path, "diff-tree", *DIFF_ARGS, record.base_sha, record.head_sha)
        patch = run_git(repo.bare_path, "format-patch", "--stdout", f"{record.base_sha}..{record.head_sha}")
        record.stored_diff = diff.decode("utf-8", "surrogateescape")
        record.stored_patch = patch.decode("utf-8", "surrogateescape")
    run_git(repo.bare_path, "repack", "-a", "-d", "-q")
    run_git(repo.bare_path, "prune", "--expire=now")
    for record in missing:
        if _has_object(repo.bare_path, record.head_sha):
            raise DemoError(f"head of pull request #{record.number} is still in {repo.bare_path}")


def _has_object(bare: Path, sha: str) -> bool:
    try:
        run_git(bare, "cat-file", "-e", sha)
    except GitError:
        return False
    return True


def build_repo(spec: RepoSpec, bare: Path) -> RepoData:
    """Create the bare repository ``bare`` from ``spec`` (replacing any old one) and return its records."""
    check_numbers((), spec.issues, spec.pulls)
    if bare.exists():
        shutil.rmtree(bare)
    bare.parent.mkdir(parents=True, exist_ok=True)
    run_git(None, "init", "--bare", "-q", "-b", spec.default_branch, str(bare))
    writer = FastImport()
    history = _History(writer, None, {}, spec.owner)
    history.replay((spec.initial, *spec.pushes), spec.pulls)
    history.publish(spec.default_branch)
    shas = writer.run(bare)
    repo = RepoData(
        full_name=spec.full_name,
        id=spec.id,
        owner=spec.owner,
        bare_path=bare.resolve(),
        description=spec.description,
        created_at=spec.created_at,
        pushed_at=spec.created_at,
        default_branch=spec.default_branch,
    )
    _add_records(repo, spec.issues, spec.pulls, history, shas)
    _drop_missing_heads(repo, spec.pulls)
    return repo


def parse_issue_ref(ref: str) -> tuple[str, int]:
    """Split ``"owner/repo#12"`` into ``("owner/repo", 12)``."""
    name, _, number = ref.partition("#")
    return name, int(number)


def find_repo(repos: Iterable[RepoData], full_name: str) -> RepoData | None:
    """The repository called ``full_name`` now or formerly (names compare case-insensitively)."""
    wanted = full_name.lower()
    candidates = list(repos)
    for repo in candidates:
        if repo.full_name.lower() == wanted:
            return repo
    return next((r for r in candidates if wanted in (n.lower() for n in r.former_names)), None)


def close_fixed_issues(repos: Iterable[RepoData], pulls: Iterable[PullRecord]) -> None:
    """Close the open issues that merged pull requests close, at the merge time, earliest merge first."""
    repos = list(repos)
    for pull in sorted((p for p in pulls if p.merged_at), key=lambda p: p.merged_at or ""):
        for ref in pull.closing_issues:
            name, number = parse_issue_ref(ref)
            target = find_repo(repos, name)
            issue = target.issues.get(number) if target else None
            if issue is not None and issue.state == "open":
                issue.state, issue.state_reason, issue.closed_at = "closed", "completed", pull.merged_at
                issue.updated_at = max(issue.updated_at, pull.merged_at or "")


def build_repos(root: Path, specs: Sequence[RepoSpec]) -> list[RepoData]:
    """Build every spec under ``root/<owner>/<name>.git`` and close the issues their merges fix."""
    repos = [build_repo(spec, root / f"{spec.full_name}.git") for spec in specs]
    close_fixed_issues(repos, [p for r in repos for p in r.pulls.values()])
    return repos


# --------------------------------------------------------------------------------------------------
# worlds: repositories served together, and the changes tests make to them
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryBatch:
    """New activity in one repository: issues, comments on existing threads, and pull requests."""

    full_name: str
    issues: tuple[IssueSpec, ...] = ()
    pulls: tuple[PullSpec, ...] = ()
    comments: tuple[tuple[int, CommentSpec], ...] = ()


W = TypeVar("W", bound="World")


class World:
    """Repositories served together: their git remotes and API records, plus the changes tests make.

    Changes (:meth:`add_history`, :meth:`add_pull`, :meth:`add_comment`, :meth:`rename_repo`) mutate the
    build in place and delete its manifest, so the next :func:`build_world` on the same root rebuilds it.
    Call :meth:`copy_to` first to keep a shared build pristine.
    """

    def __init__(self, root: Path, repos: Iterable[RepoData], manifest: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.repos: dict[str, RepoData] = {r.full_name: r for r in repos}
        self._manifest = manifest

    def repo(self, full_name: str) -> RepoData:
        """The repository called ``full_name`` now or formerly."""
        found = find_repo(self.repos.values(), full_name)
        if found is None:
            raise DemoError(f"no repository {full_name} in this world")
        return found

    def rename_repo(self, old: str, new: str) -> RepoData:
        """Rename a repository; the API then answers 301 for its old name, as GitHub does."""
        repo = self.repo(old)
        if find_repo(self.repos.values(), new) is not None:
            raise DemoError(f"cannot rename {old} to {new}: the name is taken")
        del self.repos[repo.full_name]
        repo.former_names.append(repo.full_name)
        repo.full_name = new
        self.repos[new] = repo
        self._changed(repo)
        return repo

    def add_history(self, batch: HistoryBatch) -> list[PullRecord]:
        """Append a batch of new activity on top of the repository's default branch; return the new pulls."""
        repo = self.repo(batch.full_name)
        check_numbers([*repo.issues, *repo.pulls, *repo.deleted_issues, *repo.moved_issues], batch.issues, batch.pulls)
        main = run_git(repo.bare_path, "rev-parse", f"refs/heads/{repo.default_branch}").decode().strip()
        writer = FastImport()
        history = _History(writer, main, read_files(repo.bare_path, main), repo.owner)
        history.replay((), batch.pulls)
        history.publish(repo.default_branch)
        shas = writer.run(repo.bare_path)
        added = _add_records(repo, batch.issues, batch.pulls, history, shas, batch.comments)
        _drop_missing_heads(repo, batch.pulls)
        close_fixed_issues(self.repos.values(), added)
        self._changed(repo)
        return added

    def add_pull(self, full_name: str, pull: PullSpec, issues: Sequence[IssueSpec] = ()) -> PullRecord:
        """Add one pull request (and the issues it needs) to ``full_name``; return its record."""
        return self.add_history(HistoryBatch(full_name, tuple(issues), (pull,)))[0]

    def add_comment(self, full_name: str, number: int, comment: CommentSpec) -> CommentRecord:
        """Add a comment to issue or pull request ``number``; return its record."""
        repo = self.repo(full_name)
        if number not in repo.issues and number not in repo.pulls:
            raise DemoError(f"{full_name} has no issue or pull request #{number}")
        _add_comments(repo, [(number, comment)])
        self._changed(repo)
        return repo.comments[-1]

    def copy_to(self: W, dest: Path) -> W:
        """Copy the git repositories and records to ``dest`` and return the copy (this world is untouched)."""
        dest = Path(dest).resolve()
        clone = copy.copy(self)
        clone.root, clone._manifest, clone.repos = dest, None, {}
        for name, repo in self.repos.items():
            rel = Path(os.path.relpath(repo.bare_path, self.root))
            if rel.parts and rel.parts[0] == "..":
                rel = Path(f"{repo.full_name}.git")
            shutil.copytree(repo.bare_path, dest / rel)
            twin = copy.deepcopy(repo)
            twin.bare_path = dest / rel
            clone.repos[name] = twin
        return clone

    def _changed(self, repo: RepoData) -> None:
        repo.touch()
        if self._manifest is not None:
            self._manifest.unlink(missing_ok=True)


class SampleWorld(World):
    """The built sample world (see :func:`build_world`), which can :meth:`advance` to later activity."""

    applied_batches = 0

    def advance(self, count: int | None = None) -> list[PullRecord]:
        """Apply the next ``count`` of :data:`LATER_BATCHES` (all remaining by default); return new pulls.

        The later batches are dated 2026-11, after everything in the initial build, so an incremental
        ingest run sees exactly them as new.
        """
        end = len(LATER_BATCHES) if count is None else min(len(LATER_BATCHES), self.applied_batches + count)
        added: list[PullRecord] = []
        for batch in LATER_BATCHES[self.applied_batches : end]:
            added += self.add_history(batch)
        self.applied_batches = end
        return added


# --------------------------------------------------------------------------------------------------
# the sample world as data
# --------------------------------------------------------------------------------------------------
# Accounts. Logins are invented; ids are stable so API ``user.id`` values are too. The bot ids are the
# real ones of dependabot[bot] and renovate[bot], whose commits carry those ids in their emails.

ADA = Account("ada-p", 58101, name="Ada Pereira", association="OWNER")
BJORN = Account("bjorn-o", 58102, name="Björn Ølstad")
CHEN = Account("chen-wei", 58103, name="陈伟")
DMITRI = Account("dkuznetsov", 58104, name="Dmitri Kuznetsov")
EMRE = Account("emre-y", 58105, name="Emre Yıldız")
FATIMA = Account("fatima-z", 58106, name="Fatima Zahra")
MALLORY = Account("mallory-dev", 58107, name="Mallory Quinn", association="FIRST_TIME_CONTRIBUTOR")
LIN = Account("lin-h", 58108, name="Lin Hao", association="OWNER")
GHOST = Account("ghost", 10137, name="Deleted user", association="NONE")
DEPENDABOT = Account("dependabot[bot]", 49699333, type="Bot", association="NONE")
RENOVATE = Account("renovate[bot]", 29139614, type="Bot", association="NONE")
ACME = Account("acme", 7001, type="Organization", association="NONE")
OTHER = Account("other", 7002, type="Organization", association="NONE")

T_INIT = r'''"""textkit: small, dependable string utilities."""

from textkit.case import camel_case, kebab_case, snake_case
from textkit.csvish import parse_line, parse_rows
from textkit.numbers import humanize, ordinal
from textkit.plural import pluralize
from textkit.slug import slugify
from textkit.truncate import truncate
from textkit.whitespace import squeeze
from textkit.wrap import wrap

__version__ = "0.1.0"

__all__ = [
    "camel_case",
    "humanize",
    "kebab_case",
    "ordinal",
    "parse_line",
    "parse_rows",
    "pluralize",
    "slugify",
    "snake_case",
    "squeeze",
    "truncate",
    "wrap",
]
'''

T_SLUG = r'''"""URL slugs from arbitrary titles."""

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str, sep: str = "-") -> str:
    """Return a lowercase ASCII slug of ``text`` with words joined by ``sep``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub(sep, folded.lower())
'''

T_TRUNCATE = r'''"""Shorten text to a width, marking the cut."""


def truncate(text: str, width: int, ellipsis: str = "...") -> str:
    """Return ``text`` cut to ``width`` characters, ending with ``ellipsis`` when cut."""
    if len(text) <= width:
        return text
    return text[:width] + ellipsis
'''

T_WRAP = r'''"""Greedy word wrapping."""


def wrap(text: str, width: int = 70) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters, breaking at spaces."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if len(current) + len(word) + 1 > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines
'''

T_CASE = r'''"""Conversions between snake_case, kebab-case and camelCase."""

import re

_SEPARATORS = re.compile(r"[\s_\-]+")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")


def _words(text: str) -> list[str]:
    spaced = _LOWER_UPPER.sub(r"\1 \2", text)
    return [word.lower() for word in _SEPARATORS.split(spaced) if word]


def snake_case(text: str) -> str:
    """Return ``text`` as lowercase words joined by underscores."""
    return "_".join(_words(text))


def kebab_case(text: str) -> str:
    """Return ``text`` as lowercase words joined by dashes."""
    return "-".join(_words(text))


def camel_case(text: str) -> str:
    """Return ``text`` as camelCase."""
    words = _words(text)
    return words[0] + "".join(word.capitalize() for word in words[1:])
'''

T_CSVISH = r'''"""A tiny parser for comma-separated lines with double-quoted fields."""


def parse_line(line: str, delimiter: str = ",") -> list[str]:
    """Split one line into fields; a double-quoted field may contain the delimiter."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """Parse every line of ``text``."""
    return [parse_line(line, delimiter) for line in text.split("\n")]
'''

T_NUMBERS = r'''"""Human-friendly numbers."""

_UNITS = ["", "k", "M", "G", "T"]


def humanize(value: float) -> str:
    """Return ``value`` with a metric suffix, e.g. 1500 -> '1.5k'."""
    for unit in _UNITS[:-1]:
        if abs(value) < 1000:
            return f"{value:.1f}{unit}" if unit else f"{value:g}"
        value /= 1000
    return f"{value:.1f}{_UNITS[-1]}"


def ordinal(number: int) -> str:
    """Return ``number`` with its English ordinal suffix, e.g. 2 -> '2nd'."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
'''

T_PLURAL = r'''"""English plurals for counts in messages."""


def pluralize(word: str, count: int) -> str:
    """Return ``word`` in the form that agrees with ``count``."""
    if count == 1:
        return word
    if word.endswith("y"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"
'''

T_WHITESPACE = r'''"""Whitespace clean-up."""

import re

_RUNS = re.compile(r"[ \t\n]+")


def squeeze(text: str) -> str:
    """Collapse every run of whitespace into one space and trim the ends."""
    return _RUNS.sub(" ", text).strip()
'''

# Saved as Latin-1 (see its coding cookie): the non-UTF-8 source file of the sample world.
T_ACCENTS = r'''# -*- coding: latin-1 -*-
"""Fold accented Latin-1 letters to plain ASCII.

This file is saved as Latin-1 on purpose: the table is easiest to read with the letters themselves.
"""

_FOLD = {
    "à": "a", "á": "a", "â": "a", "ä": "a", "å": "a",
    "ç": "c",
    "è": "e", "é": "e", "ê": "e", "ë": "e",
    "ì": "i", "í": "i", "î": "i", "ï": "i",
    "ñ": "n",
    "ò": "o", "ó": "o", "ô": "o", "ö": "o",
    "ù": "u", "ú": "u", "û": "u", "ü": "u",
}


def fold(text: str) -> str:
    """Return ``text`` with accented letters replaced by their ASCII base letter."""
    return "".join(_FOLD.get(char, char) for char in text)
'''

# Saved with CRLF line endings: the Windows-style file of the sample world.
T_NEWLINES = r'''"""Line-ending helpers.

This module is checked in with Windows (CRLF) line endings; keep it that way.
"""


def to_unix(text: str) -> str:
    """Return ``text`` with every CRLF turned into LF."""
    return text.replace("\r\n", "\n")


def split_lines(text: str) -> list[str]:
    """Split ``text`` into lines without their line endings."""
    return text.split("\n")
'''

T_LEGACY = r'''"""Deprecated helpers kept for textkit 0.0.x users; use textkit.slugify instead."""

import warnings

from textkit.slug import slugify


def make_slug(text: str) -> str:
    """Deprecated alias of :func:`textkit.slugify`."""
    warnings.warn("make_slug is deprecated; use slugify", DeprecationWarning, stacklevel=2)
    return slugify(text)
'''

T_TEST_SLUG = r"""from textkit import slugify


def test_slugify_joins_words_with_dashes():
    assert slugify("Hello World") == "hello-world"


def test_slugify_drops_accents():
    assert slugify("Crème brûlée") == "creme-brulee"
"""

T_TEST_TRUNCATE = r"""from textkit import truncate


def test_truncate_keeps_short_text():
    assert truncate("short", 10) == "short"
"""

T_TEST_WRAP = r"""from textkit import wrap


def test_wrap_breaks_at_spaces():
    assert wrap("the quick brown fox", 10) == ["the quick", "brown fox"]
"""

T_TEST_CASE = r"""from textkit import camel_case, kebab_case, snake_case


def test_snake_case_from_words():
    assert snake_case("Hello big World") == "hello_big_world"


def test_kebab_case_from_camel_case():
    assert kebab_case("helloBigWorld") == "hello-big-world"


def test_camel_case_from_snake_case():
    assert camel_case("hello_big_world") == "helloBigWorld"
"""

T_TEST_CSVISH = r"""from textkit import parse_line, parse_rows


def test_parse_line_splits_on_commas():
    assert parse_line("a,b,c") == ["a", "b", "c"]


def test_parse_line_keeps_delimiters_inside_quotes():
    assert parse_line('"a,b",c') == ["a,b", "c"]


def test_parse_rows_parses_each_line():
    assert parse_rows("a,b\nc,d") == [["a", "b"], ["c", "d"]]
"""

T_TEST_NUMBERS = r"""from textkit import humanize, ordinal


def test_humanize_small_numbers_are_unchanged():
    assert humanize(12) == "12"


def test_humanize_uses_metric_suffixes():
    assert humanize(1500) == "1.5k"
    assert humanize(2_500_000) == "2.5M"


def test_ordinal_suffixes():
    assert [ordinal(n) for n in (1, 2, 3, 4, 21)] == ["1st", "2nd", "3rd", "4th", "21st"]
"""

T_TEST_PLURAL = r"""from textkit import pluralize


def test_pluralize_keeps_singular_for_one():
    assert pluralize("file", 1) == "file"


def test_pluralize_regular_nouns():
    assert pluralize("file", 2) == "files"
    assert pluralize("box", 0) == "boxes"
    assert pluralize("city", 3) == "cities"
"""

T_TEST_WHITESPACE = r"""from textkit import squeeze


def test_squeeze_collapses_runs_and_trims():
    assert squeeze("  a \t b\n\nc  ") == "a b c"
"""

T_TEST_ACCENTS = r"""from textkit.accents import fold


def test_fold_lowercase_accents():
    assert fold("crème brûlée") == "creme brulee"
"""

T_TEST_NEWLINES = r"""from textkit.newlines import split_lines, to_unix


def test_to_unix_converts_crlf():
    assert to_unix("a\r\nb\r\n") == "a\nb\n"


def test_split_lines_on_lf():
    assert split_lines("a\nb") == ["a", "b"]
"""

T_TEST_LEGACY = r"""import pytest

from textkit.legacy import make_slug


def test_make_slug_warns():
    with pytest.deprecated_call():
        assert make_slug("Hello World") == "hello-world"
"""

T_PYPROJECT = r"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "textkit"
version = "0.1.0"
description = "Small, dependable string utilities."
requires-python = ">=3.10"
license = { text = "MIT" }

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
"""

T_README = r"""# textkit

Small, dependable string utilities for Python: slugs, wrapping, truncation,
case conversion and a tiny parser for comma-separated lines.

```python
>>> from textkit import slugify, truncate
>>> slugify("Hello World")
'hello-world'
>>> truncate("abcdefghij", 6)
'abc...'
```

## Install

    pip install textkit

## Developement

    pip install -r requirements-dev.txt
    pytest

See [the usage guide](docs/usage.md) for every function.
"""

T_CHANGELOG = r"""# Changelog

## Unreleased

## 0.1.0 - 2024-12-02

- First release: slugify, wrap, truncate, case conversion, csvish, humanize, ordinal,
  pluralize and squeeze.
"""

T_DOCS_INDEX = r"""# textkit

textkit collects the string helpers every project ends up writing: slugs for URLs,
wrapping and truncation for terminals, case conversion for identifiers.

- [Usage](usage.md)
"""

T_DOCS_USAGE = r"""# Usage

## Slugs

`slugify("Hello World")` returns `"hello-world"`.

## Wrapping and truncation

`wrap(text, width)` returns a list of lines; `truncate(text, width)` shortens a string.

## Case conversion

`snake_case`, `kebab_case` and `camel_case` accept any of the three forms.

## Comma-separated lines

`parse_line('a,"b,c"')` returns `["a", "b,c"]`; `parse_rows` parses many lines.
"""

T_REQUIREMENTS = "pytest==8.3.3\nruff==0.6.9\n"

T_CI = r"""name: CI
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install -r requirements-dev.txt
      - run: pytest
"""

T_LICENSE = "MIT License\n\nCopyright (c) 2024 Acme Corp.\n\nSee https://opensource.org/license/mit for the terms.\n"

TEXTKIT_FILES: tuple[FileOp, ...] = (
    Write("src/textkit/__init__.py", T_INIT),
    Write("src/textkit/slug.py", T_SLUG),
    Write("src/textkit/truncate.py", T_TRUNCATE),
    Write("src/textkit/wrap.py", T_WRAP),
    Write("src/textkit/case.py", T_CASE),
    Write("src/textkit/csvish.py", T_CSVISH),
    Write("src/textkit/numbers.py", T_NUMBERS),
    Write("src/textkit/plural.py", T_PLURAL),
    Write("src/textkit/whitespace.py", T_WHITESPACE),
    Write("src/textkit/accents.py", T_ACCENTS, encoding="latin-1"),
    Write("src/textkit/newlines.py", T_NEWLINES, newline="\r\n"),
    Write("src/textkit/legacy.py", T_LEGACY),
    Write("tests/test_slug.py", T_TEST_SLUG),
    Write("tests/test_truncate.py", T_TEST_TRUNCATE),
    Write("tests/test_wrap.py", T_TEST_WRAP),
    Write("tests/test_case.py", T_TEST_CASE),
    Write("tests/test_csvish.py", T_TEST_CSVISH),
    Write("tests/test_numbers.py", T_TEST_NUMBERS),
    Write("tests/test_plural.py", T_TEST_PLURAL),
    Write("tests/test_whitespace.py", T_TEST_WHITESPACE),
    Write("tests/test_accents.py", T_TEST_ACCENTS),
    Write("tests/test_newlines.py", T_TEST_NEWLINES),
    Write("tests/test_legacy.py", T_TEST_LEGACY),
    Write("pyproject.toml", T_PYPROJECT),
    Write("README.md", T_README),
    Write("CHANGELOG.md", T_CHANGELOG),
    Write("LICENSE", T_LICENSE),
    Write("docs/index.md", T_DOCS_INDEX),
    Write("docs/usage.md", T_DOCS_USAGE),
    Write("requirements-dev.txt", T_REQUIREMENTS),
    Write(".github/workflows/ci.yml", T_CI),
)


def _commit(message: str, at: str, *ops: FileOp, author: Account | None = None) -> CommitSpec:
    return CommitSpec(message, at, ops, author)


def _say(author: Account, at: str, body: str) -> CommentSpec:
    return CommentSpec(author, at, body)


def _test(name: str, *lines: str) -> str:
    body = "".join(f"    {line}\n" if line else "\n" for line in lines)
    return f"\n\ndef {name}():\n{body}"


def _png_logo() -> bytes:
    """A 16x16 RGB PNG, stored uncompressed so the bytes never depend on the zlib version."""
    rows = b"".join(b"\0" + b"".join(bytes((40 + 12 * x, 90 + 8 * y, 160)) for x in range(16)) for y in range(16))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def _large_report() -> str:
    """A ~100 KB issue body: a pasted CSV export, as users attach to bug reports."""
    rows = "\n".join(f'{i},item-{i:05d},"note, with a comma",{i * 7 % 1000}' for i in range(2600))
    return (
        "`parse_rows` on the attached export (saved from Excel, CRLF endings) returns one row too "
        "many, and the last field of every row ends in `\\r`.\n\n<details><summary>export.csv</summary>"
        f"\n\n```\n{rows}\n```\n</details>\n"
    )


DEPENDABOT_BODY = (
    "Bumps [ruff](https://github.com/astral-sh/ruff) from 0.6.9 to 0.9.4.\n<details>\n<summary>Release notes"
    "</summary>\n<p><em>Sourced from ruff's releases.</em></p>\n<blockquote>\n<h2>0.9.4</h2>\n<p>Bug fixes and "
    "new preview rules.</p>\n</blockquote>\n</details>\n\n[![Dependabot compatibility score](https://dependabot-"
    "badges.githubapp.com/badges/compatibility_score?dependency-name=ruff&package-manager=pip&previous-version="
    "0.6.9&new-version=0.9.4)](https://docs.github.com/en/github/managing-security-vulnerabilities/about-"
    "dependabot-security-updates#about-compatibility-scores)\n\nDependabot will resolve any conflicts with this "
    "PR as long as you don't alter it yourself. You can also trigger a rebase manually by commenting "
    "`@dependabot rebase`.\n"
)

RENOVATE_BODY = (
    "This PR contains the following updates:\n\n| Package | Change |\n|---|---|\n| [pytest](https://docs.pytest."
    "org) | `==8.3.3` -> `==8.4.1` |\n\n---\n\n### Configuration\n\n📅 **Schedule**: Branch creation - At any "
    "time.\n\n🚦 **Automerge**: Enabled.\n\n---\n\nThis PR was generated by [Renovate Bot](https://github.com/"
    "renovatebot/renovate).\n"
)

SLUG, TRUNC, WRAP, CASE = (f"src/textkit/{m}.py" for m in ("slug", "truncate", "wrap", "case"))
CSVISH, DELIM, NUMBERS, PLURAL = (f"src/textkit/{m}.py" for m in ("csvish", "delimited", "numbers", "plural"))
INIT = "src/textkit/__init__.py"

TEXTKIT_ISSUES: tuple[IssueSpec, ...] = (
    IssueSpec(
        1,
        "slugify leaves a trailing dash for titles ending in punctuation",
        "```python\n>>> slugify(\"Hello, World!\")\n'hello-world-'\n```\nI expected `hello-world`. "
        "Leading punctuation gives a leading dash too.",
        BJORN,
        "2025-01-08T14:03:00Z",
        ("bug",),
        (
            _say(
                ADA,
                "2025-01-08T16:20:00Z",
                "Confirmed. The separator should be stripped at both ends; "
                "`str.strip(sep)` after the substitution should do it.",
            ),
        ),
    ),
    IssueSpec(
        3,
        "truncate() returns strings longer than width",
        "`truncate(\"abcdefghij\", 6)` returns `'abcdef...'` (9 characters). The docs say the result "
        "is cut *to* `width`.",
        CHEN,
        "2025-01-20T08:00:00Z",
        ("bug",),
        (
            _say(
                ADA,
                "2025-01-20T10:00:00Z",
                "Yes, the ellipsis has to count toward the width. When the "
                "width cannot even hold the ellipsis I'd raise `ValueError`.",
            ),
        ),
    ),
    IssueSpec(
        5,
        "ordinal(11) returns '11st'",
        "Same for 12 → '12nd' and 13 → '13rd'. English uses 'th' for 11–13 (and 111–113, …).",
        DMITRI,
        "2025-02-03T19:45:00Z",
        ("bug",),
    ),
    IssueSpec(
        8,
        "wrap() emits an empty first line when the first word is longer than the width",
        "```python\n>>> wrap(\"extraordinary words\", 5)\n['', 'extraordinary', 'words']\n```",
        EMRE,
        "2025-02-20T11:11:00Z",
        ("bug",),
        (
            _say(
                ADA,
                "2025-02-21T08:00:00Z",
                "Only start a new line when the current one is non-empty. "
                "`text.split()` without arguments would also take care of repeated spaces.",
            ),
            _say(GHOST, "2025-02-26T10:00:00Z", "Still happens on 0.1.0 from PyPI for me."),
        ),
    ),
    IssueSpec(
        10,
        "parse_line keeps doubled quotes inside quoted fields",
        'For `"a ""quoted"" word",b` I get `[\'a quoted word\', \'b\']`. RFC 4180 says `""` inside a '
        'quoted field is one literal `"`.',
        FATIMA,
        "2025-03-05T09:00:00Z",
        ("bug",),
    ),
    IssueSpec(
        13,
        "squeeze() ignores non‑breaking spaces 🐛",
        "在处理网页文本时，`squeeze()` 不会合并不间断空格 (U+00A0) 和 em 空格 (U+2003)。\n\n```python\n"
        ">>> squeeze('a\\u00a0\\u00a0b')\n'a\\xa0\\xa0b'\n```\nExpected `'a b'` ✨",
        CHEN,
        "2025-03-25T02:14:00Z",
        ("bug",),
        (
            _say(
                FATIMA,
                "2025-03-25T09:00:00Z",
                "`\\s` in a `str` pattern already matches all Unicode "
                "whitespace, so the character class could simply be `\\s+` 👍",
            ),
        ),
    ),
    IssueSpec(
        15,
        "camel_case('') raises IndexError",
        None,
        BJORN,
        "2025-04-10T07:30:00Z",
        ("bug",),
        closed_at="2025-04-12T12:00:00Z",
        state_reason="completed",
    ),
    IssueSpec(
        17,
        "snake_case splits acronyms badly (HTTPServer → httpserver)",
        "`snake_case('HTTPServer')` gives `httpserver`; I'd expect `http_server`. Same for "
        "`parseHTTPResponse` → `parse_http_response`.",
        DMITRI,
        "2025-04-20T18:00:00Z",
        ("enhancement",),
        (
            _say(
                ADA,
                "2025-04-21T07:00:00Z",
                "Makes sense. A second regex turning `ABCDef` into `ABC Def` "
                "before the lower/upper split should be enough.",
            ),
        ),
    ),
    IssueSpec(
        19,
        "humanize(999_999) prints '1000.0k'",
        "The value is rounded only after the unit is chosen.",
        EMRE,
        "2025-05-15T12:00:00Z",
        ("bug",),
        (
            _say(FATIMA, "2025-05-15T14:00:00Z", "+1, `humanize(999_960)` too. Round first, then pick the unit."),
            _say(ADA, "2025-05-22T10:00:00Z", "Fixed in #20, will be in the next release."),
        ),
    ),
    IssueSpec(
        21,
        "parse_rows returns a trailing empty row and keeps \\r on CRLF input",
        _large_report(),
        FATIMA,
        "2025-06-02T10:00:00Z",
        ("bug",),
        (_say(DMITRI, "2025-06-02T13:00:00Z", "Probably `splitlines()` instead of `split('\\n')`."),),
    ),
    IssueSpec(
        24,
        "Remove the deprecated textkit.legacy module",
        "`make_slug` has warned since 0.0.9. Time to drop it before 0.2.",
        ADA,
        "2025-07-01T08:00:00Z",
        ("breaking",),
    ),
    IssueSpec(
        26,
        "pluralize('day') gives 'daies'",
        "Words ending in a vowel + y just take an s.",
        BJORN,
        "2025-07-15T10:00:00Z",
        ("bug", "good first issue"),
        (_say(MALLORY, "2025-07-16T09:00:00Z", "I can take this one."),),
    ),
    IssueSpec(
        29,
        "fold() ignores uppercase accents (É, À) and ß",
        "`fold('ÉCOLE')` returns `'ÉCOLE'`. Also `ß` should become `ss`.",
        EMRE,
        "2025-08-20T15:00:00Z",
        ("bug",),
    ),
    IssueSpec(
        31,
        "split_lines keeps '\\r' on Windows text",
        "`split_lines('a\\r\\nb')` returns `['a\\r', 'b']`. Old Mac files use a lone `\\r`, too.",
        DMITRI,
        "2025-09-01T09:00:00Z",
        ("bug",),
    ),
    IssueSpec(
        34,
        "Add max_length to slugify",
        "Our CMS limits slugs to 50 characters.",
        FATIMA,
        "2025-10-15T11:00:00Z",
        ("enhancement",),
        (_say(BJORN, "2025-10-15T12:00:00Z", "Please cut at a word boundary, not mid-word."),),
    ),
    IssueSpec(
        36,
        "truncate(): option to avoid cutting words in half",
        "For UI labels.",
        BJORN,
        "2025-11-05T09:00:00Z",
        ("enhancement",),
        fate="deleted",
    ),
    IssueSpec(
        38,
        "Strip a UTF-8 BOM before parsing",
        "Files saved by Excel start with `\\ufeff`, so the first field name starts with it. Affects "
        "`parse_rows` here and `read_config` in other/lib.",
        EMRE,
        "2025-11-20T10:00:00Z",
        ("bug",),
        (
            _say(
                LIN, "2025-11-21T08:00:00Z", "Same bug in other/lib; I'll move this issue there once textkit is fixed."
            ),
        ),
        moved_to="other/lib#5",
    ),
    IssueSpec(
        40,
        "Add pascal_case",
        "For generating class names.",
        CHEN,
        "2026-01-10T03:00:00Z",
        ("enhancement",),
        (_say(DMITRI, "2026-01-10T09:00:00Z", "Should reuse `_words()` so acronyms behave the same."),),
    ),
    IssueSpec(
        43,
        "wrap() should be able to break words longer than the width",
        "URLs in log lines overflow the width.",
        FATIMA,
        "2026-03-01T10:00:00Z",
        ("enhancement",),
    ),
    IssueSpec(
        46,
        "Add a truncate variant that cuts the middle",
        "Useful for file paths.",
        EMRE,
        "2026-04-10T09:00:00Z",
        ("enhancement",),
        (_say(BJORN, "2026-04-10T12:00:00Z", "Yes, like `/very/long/…/file.txt`."),),
    ),
    IssueSpec(
        48,
        "pluralize irregular nouns (child → children)",
        "`pluralize('child', 2)` gives `childs`.",
        BJORN,
        "2026-05-02T10:00:00Z",
        ("enhancement",),
    ),
    IssueSpec(
        51,
        'kebab_case keeps apostrophes: "don\'t stop" → "don\'t-stop"',
        "Expected `dont-stop`. The typographic apostrophe (’) has the same problem.",
        DMITRI,
        "2026-06-20T10:00:00Z",
        ("bug",),
    ),
    IssueSpec(
        53,
        "humanize(): choose the number of decimals",
        "One decimal is too coarse for our dashboards.",
        CHEN,
        "2026-07-20T10:00:00Z",
        ("enhancement",),
    ),
    IssueSpec(
        55,
        "parse_line: support a custom quote character",
        "Some exports quote with `'`.",
        FATIMA,
        "2026-08-15T10:00:00Z",
        ("enhancement",),
        (
            _say(ADA, "2026-08-15T14:00:00Z", "A `quotechar` keyword, like the csv module, please."),
            _say(FATIMA, "2026-09-03T09:00:00Z", "Thanks! 🙏"),
        ),
    ),
    IssueSpec(
        57,
        "slugify drops ß, æ, ø and œ instead of transliterating them",
        "`slugify('Straße')` gives `strae`.",
        EMRE,
        "2026-09-10T10:00:00Z",
        ("bug",),
    ),
    IssueSpec(
        59,
        "wrap(): keep the indentation of the first line",
        "Indented paragraphs lose their indent.",
        BJORN,
        "2026-10-05T10:00:00Z",
        ("enhancement",),
    ),
)

TEXTKIT_PULLS: tuple[PullSpec, ...] = (
    PullSpec(
        2,
        "Strip separators at both ends of slugs",
        "Fixes #1\n\nStrips the separator from both ends after the substitution.",
        ADA,
        "2025-01-10T09:30:00Z",
        "fix-slug-edges",
        (
            _commit(
                "Strip separators at both ends of slugs",
                "2025-01-10T09:12:00Z",
                Edit(
                    SLUG,
                    "    return _NON_ALNUM.sub(sep, folded.lower())\n",
                    "    return _NON_ALNUM.sub(sep, folded.lower()).strip(sep)\n",
                ),
                Append(
                    "tests/test_slug.py",
                    _test(
                        "test_slugify_strips_separators_at_both_ends",
                        'assert slugify("  Hello, World!  ") == "hello-world"',
                    ),
                ),
            ),
        ),
        closed_at="2025-01-10T11:00:00Z",
        labels=("bug",),
        closes=("acme/textkit#1",),
        comments=(_say(BJORN, "2025-01-10T12:15:00Z", "Thanks, that was quick!"),),
    ),
    PullSpec(
        4,
        "Count the ellipsis toward the truncate width",
        "closes: #3\n\nAlso raises `ValueError` when the width cannot even hold the ellipsis, as suggested.",
        CHEN,
        "2025-01-22T13:00:00Z",
        "truncate-width",
        (
            _commit(
                "Count the ellipsis toward the truncate width",
                "2025-01-22T12:40:00Z",
                Edit(
                    TRUNC,
                    "    return text[:width] + ellipsis\n",
                    "    if width < len(ellipsis):\n"
                    '        raise ValueError(f"width {width} is shorter than the ellipsis {ellipsis!r}")\n'
                    "    return text[: width - len(ellipsis)] + ellipsis\n",
                ),
                Edit(
                    "tests/test_truncate.py",
                    "from textkit import truncate\n",
                    "import pytest\n\nfrom textkit import truncate\n",
                ),
                Append(
                    "tests/test_truncate.py",
                    _test("test_truncate_result_fits_the_width", 'assert truncate("abcdefghij", 6) == "abc..."')
                    + _test(
                        "test_truncate_rejects_a_width_below_the_ellipsis",
                        "with pytest.raises(ValueError):",
                        '    truncate("abcdef", 2)',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-01-23T09:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#3",),
    ),
    PullSpec(
        6,
        "Use 'th' for 11th, 12th and 13th",
        "FIXES #5",
        DMITRI,
        "2025-02-04T21:10:00Z",
        "ordinal-teens",
        (
            _commit(
                "Add failing test for 11th-13th",
                "2025-02-04T20:30:00Z",
                Append(
                    "tests/test_numbers.py",
                    _test(
                        "test_ordinal_uses_th_for_eleven_to_thirteen",
                        'assert [ordinal(n) for n in (11, 12, 13, 111, 112)] == ["11th", "12th", "13th", "111th", '
                        '"112th"]',
                    ),
                ),
            ),
            _commit(
                "Handle 11-13 in ordinal",
                "2025-02-04T20:55:00Z",
                Edit(
                    NUMBERS,
                    '    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")\n',
                    "    if number % 100 in (11, 12, 13):\n"
                    '        suffix = "th"\n    else:\n'
                    '        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")\n',
                ),
            ),
        ),
        closed_at="2025-02-05T08:30:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#5",),
    ),
    PullSpec(
        7,
        "Bump ruff from 0.6.9 to 0.9.4",
        DEPENDABOT_BODY,
        DEPENDABOT,
        "2025-02-15T06:00:00Z",
        "dependabot/pip/ruff-0.9.4",
        (
            _commit(
                "Bump ruff from 0.6.9 to 0.9.4\n\nBumps [ruff](https://github.com/astral-sh/ruff) from 0.6.9 "
                "to 0.9.4.\n\n---\nupdated-dependencies:\n- dependency-name: ruff\n  dependency-type: direct:"
                "development\n...\n\nSigned-off-by: dependabot[bot] <support@github.com>",
                "2025-02-15T06:00:00Z",
                Edit("requirements-dev.txt", "ruff==0.6.9", "ruff==0.9.4"),
            ),
        ),
        merge="squash",
        closed_at="2025-02-17T09:00:00Z",
        merged_by=ADA,
        labels=("dependencies",),
    ),
    PullSpec(
        9,
        "Don't emit empty lines in wrap()",
        "Resolves acme/textkit#8\n\nAlso collapses runs of spaces, since `split()` without arguments is used now.",
        EMRE,
        "2025-02-24T15:00:00Z",
        "wrap-empty-lines",
        (
            _commit(
                "Don't emit empty lines in wrap()",
                "2025-02-24T14:30:00Z",
                Edit(
                    WRAP,
                    '    for word in text.split(" "):\n        if len(current)',
                    "    for word in text.split():\n        if current and len(current)",
                ),
                Edit(
                    WRAP,
                    "    lines.append(current)\n    return lines\n",
                    "    if current:\n        lines.append(current)\n    return lines\n",
                ),
                Append(
                    "tests/test_wrap.py",
                    _test(
                        "test_wrap_never_emits_empty_lines",
                        'assert wrap("extraordinary words", 5) == ["extraordinary", "words"]',
                    )
                    + _test("test_wrap_of_empty_text_is_empty", 'assert wrap("") == []'),
                ),
            ),
        ),
        closed_at="2025-02-27T10:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#8",),
    ),
    PullSpec(
        11,
        "Handle escaped double quotes in parse_line",
        "Fixes https://github.com/acme/textkit/issues/10",
        FATIMA,
        "2025-03-07T10:30:00Z",
        "csv-escaped-quotes",
        (
            _commit(
                "Handle escaped double quotes in parse_line",
                "2025-03-07T10:05:00Z",
                Edit(
                    CSVISH,
                    "    for char in line:\n        if char == '\"':\n",
                    "    index = 0\n    while index < len(line):\n        char = line[index]\n"
                    "        if char == '\"' and quoted and line[index + 1 : index + 2] == '\"':\n"
                    "            current.append('\"')\n            index += 1\n"
                    "        elif char == '\"':\n",
                ),
                Edit(
                    CSVISH,
                    "            current.append(char)\n    fields.append",
                    "            current.append(char)\n        index += 1\n    fields.append",
                ),
                Append(
                    "tests/test_csvish.py",
                    _test(
                        "test_parse_line_unescapes_doubled_quotes",
                        'assert parse_line(\'"a ""quoted"" word",b\') == [\'a "quoted" word\', "b"]',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-03-08T12:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#10",),
    ),
    PullSpec(
        12,
        "Document the csvish dialect in the usage guide",
        "Docs only: describes the quoting rules after #11.",
        ADA,
        "2025-03-18T16:00:00Z",
        "docs-csvish",
        (
            _commit(
                "Document the csvish dialect",
                "2025-03-18T15:45:00Z",
                Append(
                    "docs/usage.md",
                    '\nInside a quoted field a doubled quote (`""`) stands for one literal '
                    "quote, as in RFC 4180.\nLine breaks inside quoted fields are not supported.\n",
                ),
                Edit(
                    "README.md",
                    "for every function.\n",
                    "for every function, including the\ncomma-separated dialect `parse_line` accepts.\n",
                ),
            ),
        ),
        closed_at="2025-03-18T16:30:00Z",
        labels=("documentation",),
    ),
    PullSpec(
        14,
        "Treat all Unicode whitespace as space in squeeze ✨",
        "修复 — fixes #13 🎉\n\nUses `\\s+`, which covers U+00A0, U+2003 and friends.",
        CHEN,
        "2025-03-28T03:00:00Z",
        "unicode-whitespace",
        (
            _commit(
                "Treat all Unicode whitespace as space in squeeze()",
                "2025-03-28T02:40:00Z",
                Edit("src/textkit/whitespace.py", r'_RUNS = re.compile(r"[ \t\n]+")', r'_RUNS = re.compile(r"\s+")'),
                Append(
                    "tests/test_whitespace.py",
                    _test("test_squeeze_handles_unicode_spaces", r'assert squeeze("a\u00a0\u00a0b\u2003c") == "a b c"'),
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-03-29T10:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#13",),
    ),
    PullSpec(
        16,
        "Return an empty string from camel_case('')",
        "",
        BJORN,
        "2025-04-12T08:00:00Z",
        "camel-empty",
        (
            _commit(
                "Fix camel_case on empty input\n\nFixes #15",
                "2025-04-12T07:50:00Z",
                Edit(
                    CASE,
                    "    words = _words(text)\n    return words[0]",
                    '    words = _words(text)\n    if not words:\n        return ""\n    return words[0]',
                ),
                Append(
                    "tests/test_case.py", _test("test_camel_case_of_empty_text_is_empty", 'assert camel_case("") == ""')
                ),
            ),
        ),
        closed_at="2025-04-12T12:00:00Z",
        merged_by=ADA,
        labels=("bug",),
    ),
    PullSpec(
        18,
        "Split acronyms in case conversion",
        "<!--\nDraft notes, not for the changelog:\nfixes #8 was a "
        "similar regex problem, look there first.\n-->\nCloses #17\n",
        DMITRI,
        "2025-05-02T17:00:00Z",
        "case-acronyms",
        (
            _commit(
                "Split acronyms in case conversion",
                "2025-05-02T16:30:00Z",
                Edit(
                    CASE,
                    '_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")\n',
                    '_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")\n_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")\n',
                ),
                Edit(
                    CASE,
                    r'    spaced = _LOWER_UPPER.sub(r"\1 \2", text)',
                    r'    spaced = _LOWER_UPPER.sub(r"\1 \2", _ACRONYM.sub(r"\1 \2", text))',
                ),
                Append(
                    "tests/test_case.py",
                    _test(
                        "test_snake_case_keeps_acronyms_together",
                        'assert snake_case("HTTPServer") == "http_server"',
                        'assert snake_case("parseHTTPResponse") == "parse_http_response"',
                    ),
                ),
            ),
        ),
        closed_at="2025-05-03T09:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#17",),
    ),
    PullSpec(
        20,
        "Round before choosing the unit in humanize",
        "Fixes #19.\n\nAlso fixes other/lib#3, which vendors this function.",
        EMRE,
        "2025-05-20T09:00:00Z",
        "humanize-rounding",
        (
            _commit(
                "Round before choosing the unit in humanize",
                "2025-05-20T08:40:00Z",
                Edit(NUMBERS, "        if abs(value) < 1000:\n", "        if abs(round(value, 1)) < 1000:\n"),
                Append(
                    "tests/test_numbers.py",
                    _test(
                        "test_humanize_rounds_before_choosing_the_unit",
                        'assert humanize(999_999) == "1.0M"',
                        'assert humanize(999_960) == "1.0M"',
                    ),
                ),
            ),
        ),
        closed_at="2025-05-22T09:30:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#19", "other/lib#3"),
    ),
    PullSpec(
        22,
        "Ignore the final newline and CRLF endings in parse_rows",
        "Fixes #21",
        FATIMA,
        "2025-06-05T09:00:00Z",
        "rows-line-endings",
        (
            _commit(
                "Ignore the final newline and CRLF endings in parse_rows",
                "2025-06-05T08:45:00Z",
                Edit(
                    CSVISH,
                    '    """Parse every line of ``text``."""\n'
                    r'    return [parse_line(line, delimiter) for line in text.split("\n")]',
                    '    """Parse every line of ``text``; LF, CRLF and a final newline are all fine."""\n'
                    "    return [parse_line(line, delimiter) for line in text.splitlines()]",
                ),
                Append(
                    "tests/test_csvish.py",
                    _test(
                        "test_parse_rows_ignores_crlf_and_the_final_newline",
                        r'assert parse_rows("a,b\r\nc,d\r\n") == [["a", "b"], ["c", "d"]]',
                    ),
                ),
            ),
        ),
        closed_at="2025-06-06T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#21",),
    ),
    PullSpec(
        23,
        "chore(deps): bump pytest to 8.4.1",
        RENOVATE_BODY,
        RENOVATE,
        "2025-06-20T04:00:00Z",
        "renovate/pytest-8.x",
        (
            _commit(
                "chore(deps): bump pytest to 8.4.1",
                "2025-06-20T04:00:00Z",
                Edit("requirements-dev.txt", "pytest==8.3.3", "pytest==8.4.1"),
            ),
        ),
        merge="squash",
        closed_at="2025-06-20T04:30:00Z",
        merged_by=RENOVATE,
        labels=("dependencies",),
    ),
    PullSpec(
        25,
        "Remove the deprecated legacy module",
        "Closes #24",
        ADA,
        "2025-07-03T08:00:00Z",
        "drop-legacy",
        (
            _commit(
                "Remove the deprecated legacy module",
                "2025-07-03T07:45:00Z",
                Delete("src/textkit/legacy.py"),
                Delete("tests/test_legacy.py"),
                Edit(
                    "CHANGELOG.md",
                    "## Unreleased\n",
                    "## Unreleased\n\n- Removed the deprecated `textkit.legacy` module (`make_slug`); use `slugify`.\n",
                ),
            ),
        ),
        closed_at="2025-07-03T09:00:00Z",
        labels=("breaking",),
        closes=("acme/textkit#24",),
    ),
    PullSpec(
        27,
        "Only turn consonant + y into -ies",
        "Fixes #26",
        MALLORY,
        "2025-07-18T12:00:00Z",
        "fix-vowel-y",
        (
            _commit(
                "Only turn consonant + y into -ies",
                "2025-07-18T11:40:00Z",
                Edit(
                    PLURAL,
                    '    if word.endswith("y"):\n',
                    '    if word.endswith("y") and word[-2:-1] not in "aeiou":\n',
                ),
                Append(
                    "tests/test_plural.py",
                    _test("test_pluralize_vowel_before_y", 'assert pluralize("day", 2) == "days"'),
                ),
            ),
            _commit(
                "Test more vowel + y words",
                "2025-07-19T17:50:00Z",
                Edit(
                    "tests/test_plural.py",
                    'assert pluralize("day", 2) == "days"\n',
                    'assert pluralize("day", 2) == "days"\n    assert pluralize("key", 2) == "keys"\n'
                    '    assert pluralize("boy", 5) == "boys"\n',
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-07-20T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#26",),
        fork_owner=MALLORY,
        comments=(
            _say(ADA, "2025-07-19T09:00:00Z", "Could you add a test for `key` and `boy` too?"),
            _say(MALLORY, "2025-07-19T18:00:00Z", "Done."),
        ),
    ),
    PullSpec(
        28,
        "Rename csvish to delimited",
        "Part of the cleanup discussed in #24. No behaviour change; `from textkit import parse_line` keeps working.",
        CHEN,
        "2025-08-01T06:00:00Z",
        "rename-csvish",
        (
            _commit(
                "Rename csvish to delimited",
                "2025-08-01T05:40:00Z",
                Rename(CSVISH, DELIM),
                Edit(DELIM, "A tiny parser for comma-separated lines", "A tiny parser for delimiter-separated lines"),
                Rename("tests/test_csvish.py", "tests/test_delimited.py"),
                Edit(INIT, "from textkit.csvish import", "from textkit.delimited import"),
                Edit(
                    "docs/usage.md",
                    "## Comma-separated lines",
                    "## Delimited lines (`textkit.delimited`, formerly `csvish`)",
                ),
            ),
        ),
        closed_at="2025-08-02T09:00:00Z",
        merged_by=ADA,
        labels=("refactor",),
    ),
    PullSpec(
        30,
        "Fold uppercase Latin-1 letters and ß",
        "Fixes #29\n\nThe module stays Latin-1 encoded (see its coding cookie).",
        EMRE,
        "2025-08-25T08:00:00Z",
        "fold-uppercase",
        (
            _commit(
                "Fold uppercase Latin-1 letters and ß",
                "2025-08-25T07:30:00Z",
                Edit(
                    "src/textkit/accents.py",
                    '    "ù": "u", "ú": "u", "û": "u", "ü": "u",\n}\n',
                    '    "ù": "u", "ú": "u", "û": "u", "ü": "u",\n'
                    '    "À": "A", "Á": "A", "Â": "A", "Ä": "A", "Å": "A",\n    "Ç": "C",\n'
                    '    "È": "E", "É": "E", "Ê": "E", "Ë": "E",\n    "Ì": "I", "Í": "I", "Î": "I", "Ï": "I",\n'
                    '    "Ñ": "N",\n    "Ò": "O", "Ó": "O", "Ô": "O", "Ö": "O",\n'
                    '    "Ù": "U", "Ú": "U", "Û": "U", "Ü": "U",\n    "ß": "ss",\n}\n',
                    encoding="latin-1",
                ),
                Append(
                    "tests/test_accents.py",
                    _test(
                        "test_fold_uppercase_accents_and_sharp_s",
                        'assert fold("ÉCOLE À Paris") == "ECOLE A Paris"',
                        'assert fold("Straße") == "Strasse"',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-09-15T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#29",),
    ),
    PullSpec(
        32,
        "Handle CRLF and lone CR in split_lines",
        "Fixes #31",
        DMITRI,
        "2025-09-03T10:00:00Z",
        "split-crlf",
        (
            _commit(
                "Handle CRLF and lone CR in split_lines",
                "2025-09-03T09:40:00Z",
                Edit(
                    "src/textkit/newlines.py",
                    '    """Split ``text`` into lines without their line endings."""\n'
                    r'    return text.split("\n")',
                    '    """Split ``text`` into lines without their line endings (LF, CRLF or a lone CR)."""\n'
                    r'    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")',
                    newline="\r\n",
                ),
                Append(
                    "tests/test_newlines.py",
                    _test(
                        "test_split_lines_handles_crlf_and_lone_cr",
                        r'assert split_lines("a\r\nb\rc") == ["a", "b", "c"]',
                    ),
                ),
            ),
        ),
        closed_at="2025-09-10T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#31",),
    ),
    PullSpec(
        33,
        "Add a logo to the docs 🎨",
        "Adds a 16×16 logo.",
        ADA,
        "2025-10-01T08:00:00Z",
        "docs-logo",
        (
            _commit(
                "Add a logo to the docs",
                "2025-10-01T07:50:00Z",
                Write("docs/logo.png", _png_logo()),
                Edit("docs/index.md", "# textkit\n\n", "# textkit\n\n![textkit logo](logo.png)\n\n"),
            ),
        ),
        merge="squash",
        closed_at="2025-10-01T09:00:00Z",
        labels=("documentation",),
    ),
    PullSpec(
        35,
        "Add max_length to slugify",
        "Closes #34.\n\nCuts at a word boundary. This also fixes #2's follow-up question about very long titles.",
        FATIMA,
        "2025-10-20T10:00:00Z",
        "slug-max-length",
        (
            _commit(
                "Add max_length to slugify",
                "2025-10-20T09:30:00Z",
                Edit(
                    SLUG,
                    'def slugify(text: str, sep: str = "-") -> str:\n'
                    '    """Return a lowercase ASCII slug of ``text`` with words joined by ``sep``."""\n',
                    'def slugify(text: str, sep: str = "-", max_length: int | None = None) -> str:\n'
                    '    """Return a lowercase ASCII slug of ``text`` with words joined by ``sep``.\n\n'
                    "    With ``max_length`` the slug is cut at a word boundary to at most that many "
                    'characters.\n    """\n',
                ),
                Edit(
                    SLUG,
                    "    return _NON_ALNUM.sub(sep, folded.lower()).strip(sep)\n",
                    "    slug = _NON_ALNUM.sub(sep, folded.lower()).strip(sep)\n"
                    "    if max_length is None or len(slug) <= max_length:\n        return slug\n"
                    "    cut = slug[: max_length + 1].rsplit(sep, 1)[0]\n    return cut[:max_length].strip(sep)\n",
                ),
                Append(
                    "tests/test_slug.py",
                    _test(
                        "test_slugify_cuts_at_a_word_boundary",
                        'assert slugify("Hello big world", max_length=8) == "hello"',
                        'assert slugify("Hello big world", max_length=9) == "hello-big"',
                        'assert slugify("abcdefgh", max_length=3) == "abc"',
                    ),
                ),
            ),
        ),
        closed_at="2025-10-21T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#34",),
    ),
    PullSpec(
        37,
        "Add whole_words to truncate",
        "Fixes #36",
        BJORN,
        "2025-11-07T10:00:00Z",
        "truncate-whole-words",
        (
            _commit(
                "Add whole_words to truncate",
                "2025-11-07T09:45:00Z",
                Edit(
                    TRUNC,
                    'def truncate(text: str, width: int, ellipsis: str = "...") -> str:\n'
                    '    """Return ``text`` cut to ``width`` characters, ending with ``ellipsis`` when cut."""\n',
                    'def truncate(text: str, width: int, ellipsis: str = "...", whole_words: bool = False) -> str:\n'
                    '    """Return ``text`` cut to ``width`` characters, ending with ``ellipsis`` when cut.\n\n'
                    "    With ``whole_words`` the cut moves back to the last space so that no word is split.\n"
                    '    """\n',
                ),
                Edit(
                    TRUNC,
                    "    return text[: width - len(ellipsis)] + ellipsis\n",
                    "    kept = text[: width - len(ellipsis)]\n"
                    '    if whole_words and text[len(kept)] != " " and " " in kept:\n'
                    '        kept = kept.rsplit(" ", 1)[0].rstrip()\n    return kept + ellipsis\n',
                ),
                Append(
                    "tests/test_truncate.py",
                    _test(
                        "test_truncate_whole_words_never_splits_a_word",
                        'assert truncate("the quick brown fox", 12, whole_words=True) == "the quick..."',
                        'assert truncate("the quick brown fox", 11, whole_words=True) == "the..."',
                    ),
                ),
            ),
        ),
        closed_at="2025-11-08T09:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
    ),
    PullSpec(
        39,
        "Strip a UTF-8 BOM in parse_rows",
        "Fixes #38",
        EMRE,
        "2025-11-24T09:00:00Z",
        "strip-bom",
        (
            _commit(
                "Strip a UTF-8 BOM in parse_rows",
                "2025-11-24T08:30:00Z",
                Edit(
                    DELIM,
                    "    return [parse_line(line, delimiter) for line in text.splitlines()]\n",
                    '    text = text.removeprefix("\\ufeff")\n'
                    "    return [parse_line(line, delimiter) for line in text.splitlines()]\n",
                ),
                Append(
                    "tests/test_delimited.py",
                    _test(
                        "test_parse_rows_ignores_a_byte_order_mark",
                        r'assert parse_rows("\ufeffname,age\nada,36") == [["name", "age"], ["ada", "36"]]',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2025-11-25T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("other/lib#5",),
    ),
    PullSpec(
        41,
        "Add pascal_case",
        "Closes #40",
        CHEN,
        "2026-01-14T04:00:00Z",
        "pascal-case",
        (
            _commit(
                "Add pascal_case",
                "2026-01-14T03:30:00Z",
                Edit(
                    CASE, "snake_case, kebab-case and camelCase.", "snake_case, kebab-case, camelCase and PascalCase."
                ),
                Append(
                    CASE,
                    '\n\ndef pascal_case(text: str) -> str:\n    """Return ``text`` as PascalCase."""\n'
                    '    return "".join(word.capitalize() for word in _words(text))\n',
                ),
                Edit(INIT, "camel_case, kebab_case, snake_case", "camel_case, kebab_case, pascal_case, snake_case"),
                Edit(INIT, '    "parse_rows",\n', '    "parse_rows",\n    "pascal_case",\n'),
                Edit(
                    "tests/test_case.py",
                    "camel_case, kebab_case, snake_case",
                    "camel_case, kebab_case, pascal_case, snake_case",
                ),
                Append(
                    "tests/test_case.py",
                    _test(
                        "test_pascal_case_from_snake_case",
                        'assert pascal_case("http_server_error") == "HttpServerError"',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2026-01-15T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#40",),
    ),
    PullSpec(
        42,
        "Release 0.2.0",
        "Version bump only.",
        ADA,
        "2026-02-02T09:00:00Z",
        "release-0.2.0",
        (
            _commit(
                "Release 0.2.0",
                "2026-02-02T08:55:00Z",
                Edit("pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"'),
                Edit(INIT, '__version__ = "0.1.0"', '__version__ = "0.2.0"'),
            ),
        ),
        closed_at="2026-02-02T09:30:00Z",
        labels=("release",),
    ),
    PullSpec(
        44,
        "WIP: break long words in wrap",
        "Fixes #43\n\nStill needs tests.",
        FATIMA,
        "2026-03-05T10:00:00Z",
        "wrap-break-long",
        (
            _commit(
                "WIP: break long words",
                "2026-03-05T09:30:00Z",
                Edit(
                    WRAP,
                    "def wrap(text: str, width: int = 70) -> list[str]:",
                    "def wrap(text: str, width: int = 70, break_long_words: bool = False) -> list[str]:",
                ),
                Edit(
                    WRAP,
                    "    for word in text.split():\n",
                    "    words = text.split()\n    if break_long_words:\n"
                    "        words = [w[i : i + width] for w in words for i in range(0, len(w), width)]\n"
                    "    for word in words:\n",
                ),
            ),
        ),
        outcome="draft",
        labels=("enhancement",),
        closes=("acme/textkit#43",),
    ),
    PullSpec(
        45,
        "Rewrite the parser on top of the csv module",
        "An alternative to our hand-written parser. Fixes #21 in a different way.",
        DMITRI,
        "2026-03-20T11:00:00Z",
        "csv-module",
        (
            _commit(
                "Rewrite the parser on top of the csv module",
                "2026-03-20T10:30:00Z",
                Write(
                    DELIM,
                    (
                        '"""A tiny parser for delimiter-separated lines, on top of the csv module."""\n\nimport csv\nimport io\n'
                        '\n\ndef parse_line(line: str, delimiter: str = ",") -> list[str]:\n'
                        '    """Split one line into fields; a double-quoted field may contain the delimiter."""\n'
                        "    return next(csv.reader([line], delimiter=delimiter))\n\n\n"
                        'def parse_rows(text: str, delimiter: str = ",") -> list[list[str]]:\n'
                        '    """Parse every line of ``text``; LF, CRLF and a final newline are all fine."""\n'
                        '    text = text.removeprefix("\\ufeff")\n'
                        "    return list(csv.reader(io.StringIO(text), delimiter=delimiter))\n"
                    ),
                ),
            ),
        ),
        outcome="closed",
        closed_at="2026-04-01T08:00:00Z",
        closes=("acme/textkit#21",),
        comments=(
            _say(
                ADA,
                "2026-04-01T07:55:00Z",
                "Closing: the csv module treats quotes a little differently "
                "and we want zero surprises in 0.x. Thanks for trying it!",
            ),
        ),
    ),
    PullSpec(
        47,
        "Add truncate_middle",
        "Resolved #46",
        EMRE,
        "2026-04-15T09:00:00Z",
        "truncate-middle",
        (
            _commit(
                "Add truncate_middle",
                "2026-04-14T18:00:00Z",
                Append(
                    TRUNC,
                    (
                        '\n\ndef truncate_middle(text: str, width: int, ellipsis: str = "...") -> str:\n'
                        '    """Return ``text`` cut to ``width`` characters by replacing its middle with ``ellipsis``."""\n'
                        "    if len(text) <= width:\n        return text\n    if width < len(ellipsis):\n"
                        '        raise ValueError(f"width {width} is shorter than the ellipsis {ellipsis!r}")\n'
                        "    keep = width - len(ellipsis)\n    head = (keep + 1) // 2\n"
                        "    return text[:head] + ellipsis + text[len(text) - (keep - head) :]\n"
                    ),
                ),
            ),
            _commit(
                "Export truncate_middle",
                "2026-04-14T18:20:00Z",
                Edit(
                    INIT,
                    "from textkit.truncate import truncate\n",
                    "from textkit.truncate import truncate, truncate_middle\n",
                ),
                Edit(INIT, '    "truncate",\n', '    "truncate",\n    "truncate_middle",\n'),
            ),
            _commit(
                "fixup! Add truncate_middle",
                "2026-04-15T08:40:00Z",
                Edit(
                    "tests/test_truncate.py",
                    "from textkit import truncate\n",
                    "from textkit import truncate, truncate_middle\n",
                ),
                Append(
                    "tests/test_truncate.py",
                    _test(
                        "test_truncate_middle_keeps_both_ends",
                        'assert truncate_middle("abcdefghij", 7) == "ab...ij"',
                        'assert truncate_middle("/very/long/path/file.txt", 14) == "/very/...e.txt"',
                    ),
                ),
            ),
        ),
        closed_at="2026-04-16T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#46",),
    ),
    PullSpec(
        49,
        "Add a table of irregular plurals",
        "Adds an irregular-noun table; see the discussion in #48.",
        BJORN,
        "2026-05-06T10:00:00Z",
        "irregular-plurals",
        (
            _commit(
                "Add a table of irregular plurals",
                "2026-05-06T09:40:00Z",
                Edit(
                    PLURAL,
                    '"""English plurals for counts in messages."""\n',
                    '"""English plurals for counts in messages."""\n\n'
                    '_IRREGULAR = {"child": "children", "foot": "feet", "mouse": "mice", "person": "people"}\n',
                ),
                Edit(
                    PLURAL,
                    "        return word\n    if word.endswith",
                    "        return word\n    if word in _IRREGULAR:\n        return _IRREGULAR[word]\n"
                    "    if word.endswith",
                ),
                Append(
                    "tests/test_plural.py",
                    _test(
                        "test_pluralize_irregular_nouns",
                        'assert pluralize("child", 2) == "children"',
                        'assert pluralize("person", 0) == "people"',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2026-05-07T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#48",),
    ),
    PullSpec(
        50,
        "Bump actions/checkout from 4 to 5",
        "Bumps [actions/checkout](https://github.com/actions/checkout) "
        "from 4 to 5.\n\nDependabot will resolve any conflicts with this PR as long as you don't alter it "
        "yourself.\n",
        DEPENDABOT,
        "2026-06-01T06:00:00Z",
        "dependabot/github_actions/actions/checkout-5",
        (
            _commit(
                "Bump actions/checkout from 4 to 5\n\nSigned-off-by: dependabot[bot] <support@github.com>",
                "2026-06-01T06:00:00Z",
                Edit(".github/workflows/ci.yml", "checkout@v4", "checkout@v5"),
            ),
        ),
        merge="squash",
        closed_at="2026-06-02T08:00:00Z",
        merged_by=ADA,
        labels=("dependencies", "github_actions"),
    ),
    PullSpec(
        52,
        "Drop apostrophes in case conversion",
        "Fixes #51",
        DMITRI,
        "2026-07-01T10:00:00Z",
        "case-apostrophes",
        (
            _commit(
                "Drop apostrophes in case conversion",
                "2026-07-01T09:30:00Z",
                Edit(
                    CASE,
                    '_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")\n',
                    '_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")\n_APOSTROPHES = re.compile("[\'\\u2019]")\n',
                ),
                Edit(
                    CASE,
                    "    spaced = _LOWER_UPPER.sub(",
                    '    text = _APOSTROPHES.sub("", text)\n    spaced = _LOWER_UPPER.sub(',
                ),
            ),
            _commit(
                "Add a test for apostrophes",
                "2026-07-01T09:45:00Z",
                Append(
                    "tests/test_case.py",
                    _test(
                        "test_case_conversion_drops_apostrophes",
                        'assert kebab_case("don\'t stop") == "dont-stop"',
                        'assert snake_case("it’s fine") == "its_fine"',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2026-07-02T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#51",),
        head_missing=True,
    ),
    PullSpec(
        54,
        "Add a precision argument to humanize",
        "Closes #53",
        CHEN,
        "2026-08-05T10:00:00Z",
        "humanize-precision",
        (
            _commit(
                "Add a precision argument to humanize",
                "2026-08-05T09:40:00Z",
                Edit(
                    NUMBERS,
                    "def humanize(value: float) -> str:\n"
                    '    """Return ``value`` with a metric suffix, e.g. 1500 -> \'1.5k\'."""\n',
                    "def humanize(value: float, precision: int = 1) -> str:\n"
                    '    """Return ``value`` with a metric suffix and ``precision`` decimals, e.g. 1500 -> '
                    '\'1.5k\'."""\n',
                ),
                Edit(NUMBERS, "round(value, 1)", "round(value, precision)"),
                Edit(NUMBERS, 'return f"{value:.1f}{unit}"', 'return f"{value:.{precision}f}{unit}"'),
                Edit(NUMBERS, 'return f"{value:.1f}{_UNITS[-1]}"', 'return f"{value:.{precision}f}{_UNITS[-1]}"'),
                Append(
                    "tests/test_numbers.py",
                    _test(
                        "test_humanize_with_a_precision",
                        'assert humanize(1234, precision=2) == "1.23k"',
                        'assert humanize(1234, precision=0) == "1k"',
                    ),
                ),
            ),
        ),
        closed_at="2026-08-06T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#53",),
        fork_owner=CHEN,
        fork_deleted=True,
    ),
    PullSpec(
        56,
        "Add quotechar to parse_line and parse_rows",
        "Fixes #55",
        FATIMA,
        "2026-09-01T10:00:00Z",
        "quotechar",
        (
            _commit(
                "Add quotechar to parse_line and parse_rows",
                "2026-09-01T09:40:00Z",
                Edit(
                    DELIM,
                    'def parse_line(line: str, delimiter: str = ",") -> list[str]:\n'
                    '    """Split one line into fields; a double-quoted field may contain the delimiter."""\n',
                    'def parse_line(line: str, delimiter: str = ",", quotechar: str = \'"\') -> list[str]:\n'
                    '    """Split one line into fields; a field quoted with ``quotechar`` may contain the '
                    'delimiter."""\n',
                ),
                Edit(
                    DELIM,
                    "        if char == '\"' and quoted and line[index + 1 : index + 2] == '\"':\n"
                    "            current.append('\"')\n",
                    "        if char == quotechar and quoted and line[index + 1 : index + 2] == quotechar:\n"
                    "            current.append(quotechar)\n",
                ),
                Edit(DELIM, "        elif char == '\"':\n", "        elif char == quotechar:\n"),
                Edit(
                    DELIM,
                    'def parse_rows(text: str, delimiter: str = ",") -> list[list[str]]:\n',
                    'def parse_rows(text: str, delimiter: str = ",", quotechar: str = \'"\') -> list[list[str]]:\n',
                ),
                Edit(DELIM, "parse_line(line, delimiter) for", "parse_line(line, delimiter, quotechar) for"),
                Append(
                    "tests/test_delimited.py",
                    _test(
                        "test_parse_line_with_a_custom_quote_character",
                        'assert parse_line("\'a,b\',c", quotechar="\'") == ["a,b", "c"]',
                    ),
                ),
            ),
        ),
        closed_at="2026-09-02T08:00:00Z",
        merged_by=ADA,
        labels=("enhancement",),
        closes=("acme/textkit#55",),
    ),
    PullSpec(
        58,
        "Transliterate ß, æ, ø and œ in slugify",
        "Fixes #57",
        EMRE,
        "2026-09-25T10:00:00Z",
        "slug-transliterate",
        (
            _commit(
                "Transliterate ß, æ, ø and œ in slugify",
                "2026-09-25T09:30:00Z",
                Edit(
                    SLUG,
                    '_NON_ALNUM = re.compile(r"[^a-z0-9]+")\n',
                    '_NON_ALNUM = re.compile(r"[^a-z0-9]+")\n_TRANSLITERATE = str.maketrans(\n'
                    '    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE"}\n)\n',
                ),
                Edit(
                    SLUG,
                    'unicodedata.normalize("NFKD", text)',
                    'unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))',
                ),
                Append(
                    "tests/test_slug.py",
                    _test(
                        "test_slugify_transliterates_ligatures_and_sharp_s",
                        'assert slugify("Straße Ærø") == "strasse-aero"',
                    ),
                ),
            ),
        ),
        merge="squash",
        closed_at="2026-09-26T08:00:00Z",
        merged_by=ADA,
        labels=("bug",),
        closes=("acme/textkit#57",),
    ),
    PullSpec(
        60,
        "Add title_case",
        None,
        ADA,
        "2026-10-12T10:00:00Z",
        "title-case",
        (
            _commit(
                "Add title_case",
                "2026-10-12T09:40:00Z",
                Append(
                    CASE,
                    "\n\ndef title_case(text: str) -> str:\n"
                    '    """Return ``text`` as space-separated capitalised words."""\n'
                    '    return " ".join(word.capitalize() for word in _words(text))\n',
                ),
                Append(
                    "tests/test_case.py",
                    _test(
                        "test_title_case_from_snake_case",
                        "from textkit.case import title_case",
                        "",
                        'assert title_case("hello_big_world") == "Hello Big World"',
                    ),
                ),
            ),
        ),
        outcome="open",
        labels=("enhancement",),
    ),
)

TEXTKIT_PUSHES: tuple[PushSpec, ...] = (
    PushSpec(
        _commit("Fix typo in README", "2025-06-12T07:00:00Z", Edit("README.md", "## Developement", "## Development")),
        ADA,
    ),
)

TEXTKIT = RepoSpec(
    "acme/textkit",
    810001,
    ACME,
    "Small, dependable string utilities.",
    "2024-12-02T10:00:00Z",
    PushSpec(CommitSpec("Initial commit", "2024-12-02T10:00:00Z", TEXTKIT_FILES), ADA),
    TEXTKIT_ISSUES,
    TEXTKIT_PULLS,
    TEXTKIT_PUSHES,
)

O_INIT = r'''"""lib: a tiny INI-style config reader and number formatting."""

from lib.config import read_config
from lib.numfmt import humanize

__all__ = ["humanize", "read_config"]
'''

O_CONFIG = r'''"""Read ``key = value`` files with ``[section]`` headers."""


def read_config(text: str) -> dict[str, dict[str, str]]:
    """Return ``{section: {key: value}}``; keys before any header go in section ``""``."""
    sections: dict[str, dict[str, str]] = {"": {}}
    current = sections[""]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections
'''

O_NUMFMT = r'''"""Metric suffixes for numbers (vendored from acme/textkit 0.1.0)."""

_UNITS = ["", "k", "M", "G", "T"]


def humanize(value: float) -> str:
    """Return ``value`` with a metric suffix, e.g. 1500 -> '1.5k'."""
    for unit in _UNITS[:-1]:
        if abs(value) < 1000:
            return f"{value:.1f}{unit}" if unit else f"{value:g}"
        value /= 1000
    return f"{value:.1f}{_UNITS[-1]}"
'''

O_TEST_CONFIG = r"""from lib import read_config


def test_sections_and_keys():
    text = "name = demo\n[server]\nport = 8080\n"
    assert read_config(text) == {"": {"name": "demo"}, "server": {"port": "8080"}}


def test_hash_lines_are_comments():
    assert read_config("# note\na = 1") == {"": {"a": "1"}}
"""

O_TEST_NUMFMT = r"""from lib import humanize


def test_humanize_thousands():
    assert humanize(1500) == "1.5k"
"""

O_PYPROJECT = T_PYPROJECT.replace('"textkit"', '"lib"').replace(
    "Small, dependable string utilities.", "A tiny INI-style config reader."
)

LIB_FILES: tuple[FileOp, ...] = (
    Write("src/lib/__init__.py", O_INIT),
    Write("src/lib/config.py", O_CONFIG),
    Write("src/lib/numfmt.py", O_NUMFMT),
    Write("tests/test_config.py", O_TEST_CONFIG),
    Write("tests/test_numfmt.py", O_TEST_NUMFMT),
    Write("pyproject.toml", O_PYPROJECT),
    Write("README.md", "# lib\n\nA tiny INI-style config reader, plus `humanize` for numbers.\n"),
)

TRANSFERRED_ISSUE = next(i for i in TEXTKIT_ISSUES if i.moved_to == "other/lib#5")

LIB = RepoSpec(
    "other/lib",
    810002,
    OTHER,
    "A tiny INI-style config reader.",
    "2024-11-15T10:00:00Z",
    PushSpec(CommitSpec("Initial commit", "2024-11-15T10:00:00Z", LIB_FILES), LIN),
    issues=(
        IssueSpec(
            1,
            "read_config: lines starting with ';' are not treated as comments",
            "INI files from Windows tools use `;` for comments.",
            BJORN,
            "2025-01-15T10:00:00Z",
            ("bug",),
        ),
        IssueSpec(
            3,
            "numfmt.humanize(999_999) prints '1000.0k'",
            "Same as the textkit bug.",
            EMRE,
            "2025-05-10T10:00:00Z",
            ("bug",),
            (_say(LIN, "2025-05-10T12:00:00Z", "This is vendored from acme/textkit; see acme/textkit#19."),),
        ),
        dataclasses.replace(
            TRANSFERRED_ISSUE,
            number=5,
            moved_to=None,
            transferred_from="acme/textkit#38",
            closed_at="2025-12-12T08:00:00Z",
            state_reason="completed",
            comments=(
                *TRANSFERRED_ISSUE.comments,
                _say(
                    LIN,
                    "2025-12-01T09:00:00Z",
                    "Transferred from acme/textkit#38 and reopened: `read_config` has the same problem.",
                ),
            ),
        ),
    ),
    pulls=(
        PullSpec(
            2,
            "Treat ';' lines as comments",
            "Fixes #1",
            LIN,
            "2025-01-18T10:00:00Z",
            "semicolon-comments",
            (
                _commit(
                    "Treat ';' lines as comments",
                    "2025-01-18T09:40:00Z",
                    Edit("src/lib/config.py", 'line.startswith("#")', 'line.startswith(("#", ";"))'),
                    Append(
                        "tests/test_config.py",
                        _test(
                            "test_semicolon_lines_are_comments",
                            r'assert read_config("; note\na = 1") == {"": {"a": "1"}}',
                        ),
                    ),
                ),
            ),
            closed_at="2025-01-19T08:00:00Z",
            labels=("bug",),
            closes=("other/lib#1",),
        ),
        PullSpec(
            4,
            "Round before picking a unit",
            "Port of acme/textkit#20. Fixes #3.",
            LIN,
            "2025-05-25T10:00:00Z",
            "numfmt-rounding",
            (
                _commit(
                    "Round before picking a unit (port of acme/textkit#20)",
                    "2025-05-25T09:40:00Z",
                    Edit("src/lib/numfmt.py", "if abs(value) < 1000:", "if abs(round(value, 1)) < 1000:"),
                    Append(
                        "tests/test_numfmt.py",
                        _test("test_humanize_rounds_first", 'assert humanize(999_999) == "1.0M"'),
                    ),
                ),
            ),
            closed_at="2025-05-26T08:00:00Z",
            labels=("bug",),
            closes=("other/lib#3",),
        ),
        PullSpec(
            6,
            "Strip a UTF-8 byte-order mark before parsing",
            "Fixes #5",
            LIN,
            "2025-12-10T10:00:00Z",
            "config-bom",
            (
                _commit(
                    "Strip a UTF-8 byte-order mark before parsing",
                    "2025-12-10T09:40:00Z",
                    Edit(
                        "src/lib/config.py",
                        "for raw in text.splitlines():",
                        'for raw in text.removeprefix("\\ufeff").splitlines():',
                    ),
                    Append(
                        "tests/test_config.py",
                        _test(
                            "test_byte_order_mark_is_ignored", r'assert read_config("\ufeffa = 1") == {"": {"a": "1"}}'
                        ),
                    ),
                ),
            ),
            merge="squash",
            closed_at="2025-12-12T08:00:00Z",
            labels=("bug",),
            closes=("other/lib#5",),
        ),
    ),
)

SAMPLE_REPOS: tuple[RepoSpec, ...] = (TEXTKIT, LIB)

LATER_BATCHES: tuple[HistoryBatch, ...] = (
    HistoryBatch(
        "acme/textkit",
        issues=(
            IssueSpec(
                61,
                "ordinal(-1) returns '-1th'",
                "Negative numbers get the wrong suffix.",
                DMITRI,
                "2026-11-02T10:00:00Z",
                ("bug",),
            ),
        ),
        pulls=(
            PullSpec(
                62,
                "Use the absolute value for ordinal suffixes",
                "Fixes #61",
                DMITRI,
                "2026-11-05T10:00:00Z",
                "ordinal-negative",
                (
                    _commit(
                        "Use the absolute value for ordinal suffixes",
                        "2026-11-05T09:30:00Z",
                        Edit(
                            NUMBERS,
                            "    if number % 100 in (11, 12, 13):\n",
                            "    magnitude = abs(number)\n    if magnitude % 100 in (11, 12, 13):\n",
                        ),
                        Edit(NUMBERS, ".get(number % 10,", ".get(magnitude % 10,"),
                        Append(
                            "tests/test_numbers.py",
                            _test(
                                "test_ordinal_of_negative_numbers",
                                'assert ordinal(-1) == "-1st"',
                                'assert ordinal(-12) == "-12th"',
                            ),
                        ),
                    ),
                ),
                closed_at="2026-11-06T08:00:00Z",
                merged_by=ADA,
                labels=("bug",),
                closes=("acme/textkit#61",),
            ),
        ),
    ),
    HistoryBatch(
        "acme/textkit",
        comments=((59, _say(ADA, "2026-11-09T10:00:00Z", "Let's do it: keep leading spaces on the first line.")),),
        pulls=(
            PullSpec(
                63,
                "Keep the first line's indentation in wrap()",
                "Closes #59",
                BJORN,
                "2026-11-10T10:00:00Z",
                "wrap-indent",
                (
                    _commit(
                        "Keep the first line's indentation in wrap()",
                        "2026-11-10T09:30:00Z",
                        Edit(
                            WRAP,
                            '    lines: list[str] = []\n    current = ""\n',
                            '    indent = text[: len(text) - len(text.lstrip(" "))]\n'
                            "    lines: list[str] = []\n    current = indent\n",
                        ),
                        Edit(
                            WRAP, "        if current and len(current)", "        if current.strip() and len(current)"
                        ),
                        Edit(
                            WRAP,
                            'current = f"{current} {word}" if current else word',
                            'current = f"{current} {word}" if current.strip() else current + word',
                        ),
                        Edit(WRAP, "    if current:\n", "    if current.strip():\n"),
                        Append(
                            "tests/test_wrap.py",
                            _test(
                                "test_wrap_keeps_the_first_line_indent",
                                'assert wrap("  the quick brown fox", 11) == ["  the quick", "brown fox"]',
                            ),
                        ),
                    ),
                ),
                merge="squash",
                closed_at="2026-11-11T08:00:00Z",
                merged_by=ADA,
                labels=("enhancement",),
                closes=("acme/textkit#59",),
            ),
        ),
    ),
)

EDGE_CASES: dict[str, tuple[str, ...]] = {
    # how a pull request names the issue it fixes (PullSpec.closes holds what GitHub's GraphQL says)
    "keyword_fixes": ("acme/textkit#2",),
    "keyword_closes_colon": ("acme/textkit#4",),
    "keyword_uppercase": ("acme/textkit#6",),
    "keyword_owner_repo_ref": ("acme/textkit#9",),
    "keyword_full_issue_url": ("acme/textkit#11",),
    "keyword_lowercase_in_unicode_body": ("acme/textkit#14",),
    "keyword_past_tense": ("acme/textkit#47",),
    "link_only_in_commit_message": ("acme/textkit#16",),  # commit says "Fixes #15"; body is ""
    "keyword_inside_html_comment": ("acme/textkit#18",),  # "fixes #8" in <!-- -->; really closes only #17
    "cross_repo_reference": ("acme/textkit#20",),  # fixes #19 and other/lib#3
    "fixes_a_pull_request_number": ("acme/textkit#35",),  # "fixes #2": #2 is a pull request, not an issue
    "linked_in_sidebar_only": ("acme/textkit#49",),  # body mentions #48 without a keyword; GraphQL has it
    "non_closing_mention": ("acme/textkit#12", "acme/textkit#28", "other/lib#4"),
    "no_linked_issue": (
        "acme/textkit#7",
        "acme/textkit#12",
        "acme/textkit#23",
        "acme/textkit#28",
        "acme/textkit#33",
        "acme/textkit#42",
        "acme/textkit#50",
    ),
    "references_deleted_issue": ("acme/textkit#37",),  # "Fixes #36"; GET issues/36 answers 410
    "deleted_issue": ("acme/textkit#36",),
    "references_transferred_issue": ("acme/textkit#39",),  # "Fixes #38"; GET issues/38 answers 301
    "transferred_issue": ("acme/textkit#38", "other/lib#5"),
    # who and what
    "bot_dependabot": ("acme/textkit#7", "acme/textkit#50"),
    "bot_renovate_title": ("acme/textkit#23",),
    "docs_only": ("acme/textkit#12", "acme/textkit#33"),
    "version_bump_only": ("acme/textkit#42",),
    "dependency_bump_only": ("acme/textkit#7", "acme/textkit#23", "acme/textkit#50"),
    "unicode_and_emoji": ("acme/textkit#13", "acme/textkit#14", "acme/textkit#33", "acme/textkit#55"),
    "null_body": ("acme/textkit#15", "acme/textkit#60"),  # issue #15, pull request #60
    "empty_body": ("acme/textkit#16",),
    "large_issue_body": ("acme/textkit#21",),  # ~100 KB
    "comment_by_deleted_user": ("acme/textkit#8",),
    "hint_comments_before_first_commit": (
        "acme/textkit#1",
        "acme/textkit#3",
        "acme/textkit#8",
        "acme/textkit#13",
        "acme/textkit#17",
        "acme/textkit#19",
        "acme/textkit#21",
        "acme/textkit#26",
        "acme/textkit#34",
        "acme/textkit#40",
        "acme/textkit#46",
        "acme/textkit#55",
    ),
    "comments_after_the_pull_request": (
        "acme/textkit#2",
        "acme/textkit#8",
        "acme/textkit#19",
        "acme/textkit#27",
        "acme/textkit#55",
    ),
    # files
    "binary_file_added": ("acme/textkit#33",),  # docs/logo.png
    "file_renamed": ("acme/textkit#28",),  # csvish.py -> delimited.py, test_csvish.py -> test_delimited.py
    "file_deleted": ("acme/textkit#25",),  # src/textkit/legacy.py, tests/test_legacy.py
    "latin1_source_file": ("acme/textkit#30",),  # src/textkit/accents.py
    "crlf_file": ("acme/textkit#32",),  # src/textkit/newlines.py
    # pull-request states and shapes
    "draft": ("acme/textkit#44",),
    "closed_unmerged": ("acme/textkit#45",),
    "open": ("acme/textkit#60",),
    "head_commit_missing_from_git": ("acme/textkit#52",),
    "from_fork": ("acme/textkit#27",),
    "from_deleted_fork": ("acme/textkit#54",),  # head.repo is null
    "several_commits": ("acme/textkit#6", "acme/textkit#27", "acme/textkit#47", "acme/textkit#52"),
    "squash_merged": (
        "acme/textkit#4",
        "acme/textkit#7",
        "acme/textkit#11",
        "acme/textkit#14",
        "acme/textkit#23",
        "acme/textkit#27",
        "acme/textkit#30",
        "acme/textkit#33",
        "acme/textkit#39",
        "acme/textkit#41",
        "acme/textkit#49",
        "acme/textkit#50",
        "acme/textkit#52",
        "acme/textkit#58",
        "other/lib#6",
    ),
    "base_is_not_the_merge_parent": ("acme/textkit#30",),  # #32 merged while #30 was open
    "open_issue_without_pull_request": ("acme/textkit#59",),
    "later_batch": ("acme/textkit#61", "acme/textkit#62", "acme/textkit#63"),  # SampleWorld.advance()
}

BUILD_FORMAT = 1


def sample_content_hash() -> str:
    """A digest of the sample world's data and build format; a build is reused only when it matches."""
    return hashlib.sha256(repr((BUILD_FORMAT, SAMPLE_REPOS)).encode()).hexdigest()


def build_world(root: Path) -> SampleWorld:
    """Build the sample world under ``root`` (``root/acme/textkit.git``, ``root/other/lib.git``).

    Idempotent: an existing build with the same content hash is reused, anything else is rebuilt.
    Safe against concurrent callers on the same root (a file lock serialises them).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "world.json"
    digest = sample_content_hash()
    with FileLock(str(root / ".world.lock")):
        if manifest.exists():
            stored, repos = load_repos(manifest)
            if stored == digest and all(r.bare_path.is_dir() for r in repos):
                return SampleWorld(root, repos, manifest)
            manifest.unlink()
        repos = build_repos(root, SAMPLE_REPOS)
        save_repos(manifest, repos, digest)
    return SampleWorld(root, repos, manifest)
