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

It never talks to the network and never writes outside the root directory it is given, but for the build
lock in ``locks/`` beside that root (:func:`world_build_lock`, the convention of :mod:`swerl_core.locks`).
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
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from swerl_core.demo import spec_yaml
from swerl_core.demo.errors import DemoError
from swerl_core.git import command
from swerl_core.git.errors import GitError
from swerl_core.json_files import write_json
from swerl_core.locks import LockFolder
from swerl_core.paths import is_safe_relative

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
    "world_build_lock",
]


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
    # A leading quote would start fast-import's C-style quoted form of a path.
    if not is_safe_relative(path) or path.startswith('"'):
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
    write_json(path, doc)


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

    Changes (:meth:`add_history`, :meth:`add_pull`, :meth:`add_comment`, :meth:`edit_issue`, :meth:`edit_comment`,
    :meth:`rename_repo`) mutate the build in place and delete its manifest, so the next :func:`build_world` on the
    same root rebuilds it.
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

    def edit_issue(self, full_name: str, number: int, body: str, at: str) -> IssueRecord:
        """Edit issue ``number``'s body at time ``at``: it becomes the most recently updated; return its record."""
        repo = self.repo(full_name)
        issue = repo.issues.get(number)
        if issue is None:
            raise DemoError(f"{full_name} has no issue #{number}")
        issue.body, issue.updated_at = body, max(issue.updated_at, at)
        self._changed(repo)
        return issue

    def edit_comment(self, full_name: str, comment_id: int, body: str, at: str) -> CommentRecord:
        """Edit comment ``comment_id``'s body at time ``at`` (its thread is left as it was); return its record."""
        repo = self.repo(full_name)
        comment = next((c for c in repo.comments if c.id == comment_id), None)
        if comment is None:
            raise DemoError(f"{full_name} has no comment {comment_id}")
        comment.body, comment.updated_at = body, max(comment.updated_at, at)
        self._changed(repo)
        return comment

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
# The repositories, their issues, pull requests and file versions live in data/sample-world/*.yaml (read by
# spec_yaml: accounts by login, file operations tagged by kind). Logins are invented; ids are stable so API
# ``user.id`` values are too. The bot ids are the real ones of dependabot[bot] and renovate[bot], whose commits
# carry those ids in their emails.

SAMPLE_DATA = Path(__file__).resolve().parent / "data" / "sample-world"
SAMPLE_REPO_FILES = ("acme-textkit.yaml", "other-lib.yaml")


def _read_sample(name: str) -> Any:
    return spec_yaml.load((SAMPLE_DATA / name).read_text(encoding="utf-8"))


ACCOUNTS: dict[str, Account] = {
    entry["login"]: spec_yaml.decode(Account, entry, where=f"accounts.yaml[{i}]")
    for i, entry in enumerate(_read_sample("accounts.yaml"))
}
_BY_LOGIN = spec_yaml.Reference(Account, "login", ACCOUNTS)
ADA = ACCOUNTS["ada-p"]

SAMPLE_REPOS: tuple[RepoSpec, ...] = tuple(
    spec_yaml.decode(RepoSpec, _read_sample(name), _BY_LOGIN, name) for name in SAMPLE_REPO_FILES
)

# Activity after the initial build, applied one batch at a time by :meth:`SampleWorld.advance`.
LATER_BATCHES: tuple[HistoryBatch, ...] = tuple(
    spec_yaml.decode(HistoryBatch, batch, _BY_LOGIN, f"later-batches.yaml[{i}]")
    for i, batch in enumerate(_read_sample("later-batches.yaml"))
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
BUILD_WAIT_S = 1800.0
"""How long a world build waits for another process building the same one (a large synthetic repository)."""


def sample_content_hash() -> str:
    """A digest of the sample world's data and build format; a build is reused only when it matches."""
    return hashlib.sha256(repr((BUILD_FORMAT, SAMPLE_REPOS)).encode()).hexdigest()


def world_build_lock(root: Path, target: Path) -> AbstractContextManager[None]:
    """Hold the lock on building ``target`` (a world's ``root`` itself, or one repository's manifest in it).

    The lock lives in ``locks/`` beside ``root`` (these builders know no ``SWERL_HOME``; the demo's roots sit
    in it), keyed by ``target``'s path; a caller waits at most :data:`BUILD_WAIT_S` for another process.
    """
    return LockFolder.beside(root).for_path("world", target).hold(BUILD_WAIT_S)


def build_world(root: Path) -> SampleWorld:
    """Build the sample world under ``root`` (``root/acme/textkit.git``, ``root/other/lib.git``).

    Idempotent: an existing build with the same content hash is reused, anything else is rebuilt.
    Safe against concurrent callers on the same root: a lock in ``locks/`` beside ``root`` serialises them
    (see :func:`world_build_lock`).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "world.json"
    digest = sample_content_hash()
    with world_build_lock(root, root):
        if manifest.exists():
            stored, repos = load_repos(manifest)
            if stored == digest and all(r.bare_path.is_dir() for r in repos):
                return SampleWorld(root, repos, manifest)
            manifest.unlink()
        repos = build_repos(root, SAMPLE_REPOS)
        save_repos(manifest, repos, digest)
    return SampleWorld(root, repos, manifest)
