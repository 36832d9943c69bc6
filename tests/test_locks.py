"""Inter-process locks: one folder convention, bounded waits, and a timeout that names what is held and by whom."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from swerl_core.errors import LockTimeout
from swerl_core.locks import LockFolder, holder_pid, lock_active

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from swerl_core.locks import LockFolder
    LockFolder(Path(sys.argv[1])).named("registry").acquire(0)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _start_holder(folder: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def test_a_waiter_gives_up_after_its_timeout_naming_the_lock_and_the_holders_pid(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    holder = _start_holder(folder)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            LockFolder(folder).named("registry").acquire(0.3)
        assert 0.3 <= time.monotonic() - started < 5, "the wait was not bounded by the timeout"
        assert caught.value.pid == holder.pid
        message = str(caught.value)
        assert "\n" not in message
        assert f"the registry lock is held by PID {holder.pid}" in message and str(folder / "registry.lock") in message
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_holder_is_taken_over_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    holder = _start_holder(folder)
    holder.kill()  # SIGKILL: no release ran, the file still names the dead PID
    holder.wait()
    lock = LockFolder(folder).named("registry")
    assert holder_pid(lock.path) == holder.pid and not lock_active(lock.path)
    with lock.hold(0):
        assert holder_pid(lock.path) == os.getpid() and lock_active(lock.path)
    assert holder_pid(lock.path) is None, "a released lock still names a holder"


def test_a_waiter_gets_the_lock_once_the_holder_releases_it(tmp_path: Path) -> None:
    first, second = LockFolder(tmp_path).named("build"), LockFolder(tmp_path).named("build")
    first.acquire(0)
    threading.Timer(0.2, first.release).start()
    with second.hold(10):
        assert second.held and not first.held


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    with LockFolder(tmp_path).named("build").hold(0), pytest.raises(LockTimeout, match=f"PID {os.getpid()}"):
        LockFolder(tmp_path).named("build").acquire(0.05)


def test_a_lock_keyed_by_a_path_is_the_same_through_a_symlink_and_short_for_any_path(tmp_path: Path) -> None:
    folder = LockFolder(tmp_path / "locks")
    real = tmp_path / "cache" / "model"
    real.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "cache", target_is_directory=True)
    lock = folder.for_path("download", real)
    assert folder.for_path("download", tmp_path / "alias" / "model").path == lock.path
    assert folder.for_path("download", tmp_path / "cache" / "other").path != lock.path
    assert folder.for_path("fetch", real).path != lock.path
    deep = tmp_path / "/".join(["ünïcödé-" + "x" * 200] * 12)
    name = folder.for_path("download", deep).path.name
    assert name.startswith("download-") and name.endswith(".lock") and len(name) == len("download-.lock") + 16
    assert str(real.resolve()) in lock.what


def test_the_folder_is_locks_in_swerl_home_or_beside_a_root(tmp_path: Path) -> None:
    assert LockFolder.of_home(tmp_path / "home").path == tmp_path / "home" / "locks"
    assert LockFolder.beside(tmp_path / "home" / "demo-world").path == (tmp_path / "home" / "locks").resolve()
    assert LockFolder.beside(tmp_path / "home" / "swerl.duckdb").path == (tmp_path / "home" / "locks").resolve()
    with LockFolder.of_home(tmp_path / "fresh").named("registry").hold(0):
        assert (tmp_path / "fresh" / "locks" / "registry.lock").is_file(), "the folder was not created on demand"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_a_lock_name_is_a_plain_file_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        LockFolder(tmp_path).named(name)
