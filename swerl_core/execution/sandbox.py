"""Running one command in a work tree under bubblewrap, and what came of it.

The command sees the whole file system read-only (``--ro-bind / /``) except: its work tree, bound read-write at
its own path; private, size-limited tmpfs at ``/tmp`` and ``/dev/shm``; empty tmpfs over ``/root``, ``/home``,
``/var/tmp``, ``/run``, the work tree's parent folder and any ``hidden`` path (so secrets and sibling trees are out
of sight), with ``read_only`` paths bound back. It has no network (new network, pid, ipc and uts namespaces), a cleared
environment, and limits: wall time, address space per process, file size, number of processes, output bytes and
growth of the work tree. When the command ends, or a limit stops it, every process it started dies with its pid
namespace. A root caller's command runs as a fresh unprivileged uid (the work tree is lent to it for the run): the
kernel enforces no process limit on root, and an unprivileged user cannot undo the mounts.

Inside a Kubernetes test-run pod (:mod:`.pod`), where a container runtime's seccomp profile and masked ``/proc``
commonly refuse bubblewrap, ``isolation="container"`` runs the command without it: the pod is the outer wall (no
network, no ``SWERL_HOME`` but the environment, one run per pod; :mod:`.cluster`), and inside it the command still
runs as a fresh uid with the same per-process limits, in a cleared environment, every process of that uid killed at
the end. The runner must then be root in its container (it lends the tree to the uid and takes it back).

This module never takes a shell string: a command is an argument list, passed on as written.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from swerl_core.execution.errors import SandboxUnavailable

MiB = 1024 * 1024
_UID_RANGE = (1_000_000, 2_000_000_000)  # a root caller runs each command as a fresh uid from here
ALWAYS_HIDDEN = (Path("/root"), Path("/home"), Path("/var/tmp"), Path("/run"))
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
_POLL_S = 0.2
_WALK_EVERY_S = 0.5
_DRAIN_S = 5.0
# A walk of a work tree goes this deep at most (a folder fd is held per level); a deeper tree stops its run.
MAX_TREE_DEPTH = 256

Limit = Literal["time", "output", "disk"]
Isolation = Literal["bubblewrap", "container"]
_T = TypeVar("_T")
# Every command running now: pid → (process, what kills the rest of it, the thread that started it).
_STARTED: dict[int, tuple[subprocess.Popen[bytes], Callable[[], None] | None, int]] = {}
_STOPPED_THREADS: set[int] = set()  # threads of a stopped SandboxPool: what they start is killed at once
_STARTED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """What one sandboxed command may use before it is stopped (or, for memory and files, refused)."""

    wall_s: float = 600.0
    memory_bytes: int = 4096 * MiB  # address space of each process (RLIMIT_AS): allocation beyond it fails
    output_bytes: int = 16 * MiB  # stdout + stderr kept; more stops the command
    processes: int = 256  # processes and threads at once (RLIMIT_NPROC in the sandbox's own user namespace)
    file_bytes: int = 256 * MiB  # largest file a process may write (RLIMIT_FSIZE)
    tmp_bytes: int = 256 * MiB  # size of the private /tmp
    disk_bytes: int = 1024 * MiB  # growth of the work tree that stops the command (checked every 0.2 s)
    entries: int = 100_000  # new files and folders (inodes) in the work tree that stop the command

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"sandbox limit {name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed command did: its exit code (128 + N when signal N ended it), its output (at most
    ``Limits.output_bytes`` together) and which limit, if any, stopped it."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    wall_s: float
    stopped_by: Limit | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def timed_out(self) -> bool:
        """Whether the wall-time limit stopped the command."""
        return self.stopped_by == "time"

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 on its own."""
        return self.exit_code == 0 and self.stopped_by is None


@dataclass
class _Output:
    cap: int
    chunks: dict[int, list[bytes]] = field(default_factory=dict)
    kept: int = 0
    truncated: set[int] = field(default_factory=set)

    def add(self, fd: int, data: bytes) -> bool:
        """Keep ``data`` read from ``fd`` up to the cap; False once the cap is passed."""
        room = self.cap - self.kept
        self.chunks.setdefault(fd, []).append(data[: max(room, 0)])
        self.kept += min(len(data), max(room, 0))
        if len(data) > room:
            self.truncated.add(fd)
            return False
        return True

    def of(self, fd: int) -> bytes:
        return b"".join(self.chunks.get(fd, []))


def require_bubblewrap() -> None:
    """Raise :class:`SandboxUnavailable` (one line: what is wrong, what to install) unless bubblewrap can create a
    sandbox here. The answer is probed once per process and ``PATH``."""
    problem = _bubblewrap_problem(os.environ.get("PATH", os.defpath))
    if problem:
        raise SandboxUnavailable(problem)


@functools.cache
def _bubblewrap_problem(search_path: str) -> str:
    if shutil.which("bwrap", path=search_path) is None:
        return "the execution sandbox needs bubblewrap: no `bwrap` on PATH (install it: apt-get install bubblewrap)"
    for tool in _TOOLS:
        found = shutil.which(tool, path=search_path)
        if found is None:
            return f"the execution sandbox needs {tool} (util-linux) on PATH beside bubblewrap"
        if not _trusted_program(Path(found)):
            return f"the execution sandbox refuses {found}: it or a folder above it is writable by others"
    uid = _UID_RANGE[0] if os.geteuid() == 0 else None
    argv = [*_bwrap_argv(Path("/"), (), (), Limits(), uid), "--", *_confinement(Limits(), uid), "true"]
    probe = subprocess.run(argv, capture_output=True, timeout=60, env={"PATH": search_path})
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reason given"]
        return f"bubblewrap cannot create a sandbox on this machine: {reason[0]} (user namespaces disabled?)"
    return ""


_TOOLS = ("setpriv", "prlimit", "choom")


def _trusted_program(path: Path) -> bool:
    """Whether ``path`` and every folder above it belong to root (or the caller) and no one else may write them."""
    real = path.resolve()
    for part in (real, *real.parents):
        info = part.stat()
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
            return False
    return True


@functools.cache
def _tool_paths(search_path: str) -> dict[str, str]:
    """The absolute host paths of the confinement programs, found on the caller's ``PATH`` once per process.
    Inside the sandbox a bare name would be looked up on the sandbox's ``PATH``, whose first folders (an
    environment's ``bin``) the sandboxed code can write, and a root caller's first program still holds bwrap's
    capabilities."""
    return {tool: str(Path(shutil.which(tool, path=search_path) or tool).resolve()) for tool in _TOOLS}


def run_sandboxed(
    command: Sequence[str],
    work_tree: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    *,
    read_only: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    path_prefix: Sequence[Path] = (),
    network: bool = False,
    isolation: Isolation = "bubblewrap",
) -> SandboxResult:
    """Run ``command`` (an argument list) in ``work_tree`` under bubblewrap within ``limits``.

    ``read_only`` paths stay visible (read-only) even under a hidden folder; ``hidden`` paths are replaced by empty
    folders; ``env`` is the whole environment besides ``PATH`` (``path_prefix`` folders first), ``HOME`` and
    ``TMPDIR``; ``network`` keeps the host's network (an environment's install only). Raises
    :class:`SandboxUnavailable` when bubblewrap cannot run; whatever the command does, it returns a
    :class:`SandboxResult`. ``isolation="container"``: see the module docstring (``read_only``, ``hidden`` and
    ``network`` are then the pod's to provide).
    """
    if not command:
        raise ValueError("an empty command")
    if isolation == "container":
        return _run_in_container(command, work_tree, limits, env, path_prefix)
    require_bubblewrap()
    tree = work_tree.resolve()
    # The interpreters running swerl (its virtual environment, which may sit in the hidden /tmp, and the Python
    # it was made from) stay visible, read-only: a command may be one of them.
    shown = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), *(p.resolve() for p in read_only)]
    if network:
        shown.append(Path("/etc/resolv.conf").resolve())  # may point into the hidden /run
    environment = {
        "PATH": ":".join([*(str(p) for p in path_prefix), BASE_PATH]),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    uid = random.randrange(*_UID_RANGE) if os.geteuid() == 0 else None
    argv = [
        *_bwrap_argv(tree, shown, hidden, limits, uid, network),
        *(arg for name, value in environment.items() for arg in ("--setenv", name, value)),
        "--chdir",
        str(tree),
        "--",
        *_confinement(limits, uid),
        *command,
    ]
    owner = tree.stat()
    if uid is not None:
        _chown_tree(tree, uid, uid)
    try:
        return _follow(argv, tree, limits)
    finally:
        if uid is not None:
            _chown_tree(tree, owner.st_uid, owner.st_gid)


def _run_in_container(
    command: Sequence[str],
    work_tree: Path,
    limits: Limits,
    env: Mapping[str, str] | None,
    path_prefix: Sequence[Path],
) -> SandboxResult:
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "container isolation runs each command as a uid of its own: the runner must be root in its container"
        )
    tree = work_tree.resolve()
    _require_unmovable(tree)
    uid = random.randrange(*_UID_RANGE)
    # A private temporary folder beside the tree (its folder is root's): what the run leaves there goes with it.
    scratch = tree.parent / f".swerl-tmp-{uid}"
    scratch.mkdir(mode=0o700)
    os.chown(scratch, uid, uid)
    environment = {
        "PATH": ":".join([*(str(p) for p in path_prefix), BASE_PATH]),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    argv = [*_confinement(limits, uid), *command]
    owner = tree.stat()
    _chown_tree(tree, uid, uid)
    try:
        return _follow(
            argv, tree, limits, env=environment, cwd=tree, kill_rest=lambda: _kill_uid(uid), scratch=[scratch]
        )
    finally:
        _kill_uid(uid)  # what left the process group (setsid, a daemon) dies too
        _chown_tree(tree, owner.st_uid, owner.st_gid)
        remove_tree(scratch)
        _remove_owned(Path("/tmp"), uid)


def _require_unmovable(tree: Path) -> None:
    """Refuse a tree the run's uid could swap for a symbolic link (root later takes the tree back by its path): its
    folder must be writable by its owner only, and each folder above by its owner or under the sticky bit."""
    for depth, folder in enumerate(tree.parents):
        mode = folder.stat().st_mode
        shared = mode & stat.S_IWOTH or mode & stat.S_IWGRP
        if shared and (depth == 0 or not mode & stat.S_ISVTX):
            raise SandboxUnavailable(
                f"container isolation needs {tree}'s folders writable by their owners only: {folder} is not"
            )


def _remove_owned(folder: Path, uid: int) -> None:
    """Remove what ``uid`` left directly in ``folder`` (a shared ``/tmp``)."""
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_uid == uid:
                    if entry.is_dir() and not entry.is_symlink():
                        remove_tree(entry)
                    else:
                        entry.unlink()


def _kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` until none is left (a fork loop gets a few rounds)."""
    for _ in range(50):
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
            if uids[:1] == [str(uid)]:
                found = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)
        if not found:
            return
        time.sleep(0.05)


def _bwrap_argv(
    tree: Path,
    shown: Sequence[Path],
    hidden: Sequence[Path],
    limits: Limits,
    uid: int | None = None,
    network: bool = False,
) -> list[str]:
    """bubblewrap's options up to the command. A root caller keeps bwrap privileged (no user namespace, so that the
    mounts can read what root reads) and lets only ``setpriv`` switch to ``uid``: the kernel never enforces a process
    limit on uid 0, and a fresh uid per run keeps one run's processes from counting against another's."""
    argv = ["bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    if uid is None:
        argv += ["--unshare-all", *(["--share-net"] if network else [])]
    else:
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        argv += [] if network else ["--unshare-net"]
        # bwrap enters the tree (--chdir) as root before setpriv switches: a tree made under umask 077 needs
        # CAP_DAC_READ_SEARCH for that; setpriv's switch to a non-root uid clears all three.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        argv += ["--cap-add", "CAP_DAC_READ_SEARCH"]
    tmp = Path("/tmp")
    argv += ["--ro-bind", "/", "/", "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", str(tmp)]
    roots = {p.resolve() for p in (*ALWAYS_HIDDEN, *hidden, tree.parent) if p.is_dir()} - {Path("/"), tmp}
    covered: list[Path] = []
    for root in sorted(roots, key=lambda p: len(p.parts)):  # outer folders first: inner ones are made inside them
        argv += [*_folders_to(root, [tmp, *covered]), "--tmpfs", str(root)]
        covered.append(root)
    for path, how in [*((p, "--ro-bind") for p in shown if p.exists()), (tree, "--bind")]:
        if path != Path("/"):  # the probe's tree: nothing to bind
            argv += [*_folders_to(path, [tmp, *covered]), how, str(path), str(path)]
    for root in covered:  # empty and read-only once the paths inside are bound: no memory to fill there
        argv += ["--remount-ro", str(root)]
    # A private /dev whose shm (POSIX semaphores: multiprocessing needs it) is as bounded as /tmp, then read-only.
    argv += ["--dev", "/dev", "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm"]
    return [*argv, "--remount-ro", "/dev", "--proc", "/proc"]


def _folders_to(path: Path, mounted: Sequence[Path]) -> list[str]:
    """Options making the folders between the innermost of ``mounted`` (fresh tmpfs) holding ``path`` and ``path``
    itself, each 0755: bubblewrap would make them 0700, closed to an unprivileged uid, and never changes a folder
    that exists."""
    holders = [root for root in mounted if path != root and path.is_relative_to(root)]
    if not holders:
        return []
    root = max(holders, key=lambda p: len(p.parts))
    argv: list[str] = []
    for parent in reversed(path.relative_to(root).parents[:-1]):
        argv += ["--perms", "0755", "--dir", str(root / parent)]
    return argv


def _confinement(limits: Limits, uid: int | None) -> list[str]:
    """The commands, each by its absolute host path, that drop to ``uid`` (when root), make the command the
    kernel's first victim when memory runs out, and set the per-process limits inside the namespaces."""
    tools = _tool_paths(os.environ.get("PATH", os.defpath))
    drop = [] if uid is None else [tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return [
        *drop,
        tools["choom"],
        "-n",
        "1000",
        "--",
        tools["prlimit"],
        f"--nproc={limits.processes}",
        f"--as={limits.memory_bytes}",
        f"--fsize={limits.file_bytes}",
        "--core=0",
        "--",
    ]


class SandboxPool:
    """Threads running sandboxed work (validations, resolutions) whose running commands can all be stopped at once.

    A Ctrl-C reaches only the main thread; the workers' commands run in sessions of their own and would run to their
    wall limit. :meth:`stop` kills every command the pool's threads started, so an interrupted caller ends now.
    """

    def __init__(self, workers: int) -> None:
        self._threads: set[int] = set()
        self.executor = ThreadPoolExecutor(workers, initializer=lambda: self._threads.add(threading.get_ident()))

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run ``fn(*args)`` on one of the pool's threads."""
        return self.executor.submit(fn, *args)

    def stop(self) -> None:
        """Kill every sandboxed command of the pool's threads now, and each one they start from now on (their runs
        end as stopped)."""
        with _STARTED_LOCK:
            _STOPPED_THREADS.update(self._threads)
            started = [(process, rest) for process, rest, thread in _STARTED.values() if thread in self._threads]
        for process, kill_rest in started:
            _kill(process)
            if kill_rest is not None:
                kill_rest()

    def shutdown(self) -> None:
        """Wait for the running work; what has not started never will."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        with _STARTED_LOCK:
            _STOPPED_THREADS.difference_update(self._threads)  # a later thread may take one of their idents


def _follow(
    argv: list[str],
    tree: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    kill_rest: Callable[[], None] | None = None,
    scratch: Sequence[Path] = (),
) -> SandboxResult:
    """Run ``argv`` and watch it (:func:`_watch`); ``kill_rest`` kills what may outlive its process group (without a
    pid namespace: a process that called setsid), once the command has ended or a limit stopped it; the disk bound
    covers ``scratch`` folders besides the tree."""
    disk = _DiskWatch(tree, limits.disk_bytes, limits.entries, scratch)
    start = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
        cwd=cwd,
    )
    with _STARTED_LOCK:
        _STARTED[process.pid] = (process, kill_rest, threading.get_ident())
        stopped = threading.get_ident() in _STOPPED_THREADS
    if stopped:  # its pool was stopped while this command was being set up
        _kill(process)
    try:
        return _watch(process, start, disk, limits, kill_rest)
    finally:  # whatever went wrong here, the sandbox does not outlive its caller's interest in it
        with _STARTED_LOCK:
            _STARTED.pop(process.pid, None)
        if process.poll() is None:
            _kill(process)
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def _watch(
    process: subprocess.Popen[bytes],
    start: float,
    disk: _DiskWatch,
    limits: Limits,
    kill_rest: Callable[[], None] | None = None,
) -> SandboxResult:
    assert process.stdout is not None and process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    output = _Output(limits.output_bytes)
    stopped: Limit | None = None
    drain_until = float("inf")
    with selectors.DefaultSelector() as selector:
        selector.register(out_fd, selectors.EVENT_READ)
        selector.register(err_fd, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < drain_until:
            if stopped is None:
                if time.monotonic() >= start + limits.wall_s:
                    stopped = "time"
                elif disk.exceeded():
                    stopped = "disk"
            for key, _ in selector.select(timeout=_POLL_S):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fd)
                elif not output.add(key.fd, data) and stopped is None:
                    stopped = "output"
            ended = kill_rest is not None and process.poll() is not None
            if (stopped is not None or ended) and drain_until == float("inf"):
                _kill(process)
                if kill_rest is not None:
                    kill_rest()
                # Killing bwrap ends its pid namespace, and with it every process holding the pipes: EOF follows.
                drain_until = time.monotonic() + _DRAIN_S
    exit_code = process.wait()
    return SandboxResult(
        exit_code=128 - exit_code if exit_code < 0 else exit_code,
        stdout=output.of(out_fd),
        stderr=output.of(err_fd),
        wall_s=time.monotonic() - start,
        stopped_by=stopped,
        stdout_truncated=out_fd in output.truncated,
        stderr_truncated=err_fd in output.truncated,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _DiskWatch:
    """Stops a work tree from growing past a bound: its disk space (every file and folder's blocks, whatever its
    times say) against what it held when the run started, its number of entries (inodes) likewise, and its depth.
    The file system's free space is read every poll (cheap), and the tree walked when free space fell past the
    bound or at the latest every :data:`_WALK_EVERY_S` (other processes freeing space can hide a fall); a walk
    never takes more than a twentieth of the time."""

    def __init__(self, tree: Path, bound: int, entries: int, also: Sequence[Path] = ()) -> None:
        self.tree = tree
        self.roots = (tree, *also)  # what the bound covers: the tree, and a container run's scratch folder
        self.bound = bound
        self.entries = entries
        self.baseline = self._usage()
        self.free_then = _free_bytes(tree)
        self.next_walk = time.monotonic() + _WALK_EVERY_S

    def _usage(self) -> tuple[int, int] | None:
        """Disk space and entries of every root together; None when one is deeper than a walk goes."""
        usages = [_tree_usage(root) for root in self.roots]
        if any(usage is None for usage in usages):
            return None
        return sum(u[0] for u in usages if u), sum(u[1] for u in usages if u)

    def exceeded(self) -> bool:
        free_now = _free_bytes(self.tree)
        fell = self.free_then - free_now > self.bound
        if not fell and time.monotonic() < self.next_walk:
            return False
        started = time.monotonic()
        usage = self._usage()
        self.next_walk = time.monotonic() + max(_WALK_EVERY_S, 20 * (time.monotonic() - started))
        if usage is None or self.baseline is None:
            return True  # deeper than a walk goes
        grown = usage[0] - self.baseline[0]
        if grown > self.bound or usage[1] - self.baseline[1] > self.entries:
            return True
        if fell:
            self.free_then = free_now + grown
        return False


def _free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _tree_usage(tree: Path) -> tuple[int, int] | None:
    """The disk space (allocated blocks) and number of the entries in ``tree``; None when it is deeper than
    :data:`MAX_TREE_DEPTH`."""
    totals = [0, 0]

    def count(_folder: int, _name: str, info: os.stat_result) -> None:
        totals[0] += info.st_blocks * 512
        totals[1] += 1

    return (totals[0], totals[1]) if _walk(tree, count) else None


def _walk(tree: Path, visit: Callable[[int, str, os.stat_result], None]) -> bool:
    """Call ``visit(folder_fd, name, stat)`` for every entry below ``tree`` (a folder before what it holds),
    without recursion and never following a symbolic link; False when a folder lies deeper than
    :data:`MAX_TREE_DEPTH` (what is below it is not visited)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    root = os.open(tree, flags)
    stack = [(root, os.scandir(root))]
    try:
        while stack:
            folder, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                entries.close()
                os.close(folder)
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                visit(folder, entry.name, info)
            except FileNotFoundError:  # the running command removed it
                continue
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= MAX_TREE_DEPTH:
                    return False
                try:
                    inner = os.open(entry.name, flags, dir_fd=folder)
                except (FileNotFoundError, NotADirectoryError, OSError):
                    continue  # replaced since its stat: it is seen on the next walk
                stack.append((inner, os.scandir(inner)))
        return True
    finally:
        for folder, entries in stack:
            entries.close()
            os.close(folder)


def _chown_tree(tree: Path, uid: int, gid: int) -> None:
    """Give ``tree`` and everything in it to ``uid``/``gid``, never following a symbolic link out of it. Below
    :data:`MAX_TREE_DEPTH` entries keep their owner (a run left them; the tree is removed by root)."""
    os.chown(tree, uid, gid)

    def give(folder: int, name: str, _info: os.stat_result) -> None:
        os.chown(name, uid, gid, dir_fd=folder, follow_symlinks=False)

    _walk(tree, give)


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything in it, however deep, staying on its file system and never following a
    symbolic link out of it (``shutil.rmtree`` recurses, and a sandboxed run can nest folders past Python's
    recursion limit). Raises :class:`OSError` when something stays."""
    if not os.path.lexists(path):
        return
    done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True, timeout=3600)
    if os.path.lexists(path):
        raise OSError(f"cannot remove {path}: {done.stderr.decode(errors='replace').strip()[-300:]}")
