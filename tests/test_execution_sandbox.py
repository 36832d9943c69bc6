"""The bubblewrap sandbox: what a command inside may do, and the hostile ones it contains.

Every hostile test puts a secret beside the work tree (in the test's own tmp folder), runs the command, and then
checks that the secret and everything else outside the tree is as it was, that no process of the command is
left, and that the next sandboxed command still runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from swerl_core.execution import Limits, SandboxUnavailable, remove_tree, require_bubblewrap, run_sandboxed

PY = sys.executable
MiB = 1024 * 1024


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A work tree with one file, and a secret and an ssh key beside it (outside the tree)."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "module.py").write_text("VALUE = 1\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("the secret\n")
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    return tmp_path / "tree"


def outside_state(tree: Path) -> dict[str, str]:
    """Every path beside the tree with a digest of its content (or its kind)."""
    state: dict[str, str] = {}
    for path in sorted(tree.parent.rglob("*")):
        if path == tree or tree in path.parents:
            continue
        state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return state


def python(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


def leftover_processes(marker: str) -> list[int]:
    """PIDs whose command line holds ``marker`` (the sandboxed command's own unique argument)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def assert_contained(tree: Path, before: dict[str, str], marker: str) -> None:
    assert outside_state(tree) == before, "something outside the work tree changed"
    assert leftover_processes(marker) == [], "a process of the sandboxed command outlived it"
    after = run_sandboxed(python("print('still fine')"), tree, Limits(wall_s=60))
    assert after.ok and after.stdout == b"still fine\n", after


def test_arguments_reach_the_command_exactly_as_given(tree: Path) -> None:
    ids = ["tests/test_a.py::test[a b]", "it's", '"quoted"', "back\\slash", "$(touch pwned)", "new\nline", "-x"]
    result = run_sandboxed(python("import json, sys; print(json.dumps(sys.argv[1:]))", *ids), tree)
    assert result.ok, result.stderr
    assert json.loads(result.stdout) == ids
    assert not (tree / "pwned").exists()


def test_the_work_tree_is_writable_and_what_it_wrote_belongs_to_the_caller(tree: Path) -> None:
    result = run_sandboxed(python("open('made.txt', 'w').write('made'); print(open('module.py').read())"), tree)
    assert result.ok, result.stderr
    assert result.stdout == b"VALUE = 1\n\n"
    assert (tree / "made.txt").read_text() == "made"
    assert (tree / "made.txt").stat().st_uid == os.geteuid()
    assert tree.stat().st_uid == os.geteuid()


def test_files_beside_the_work_tree_and_home_are_hidden(tree: Path) -> None:
    before = outside_state(tree)
    code = (
        "import json, os, sys\n"
        "seen = {}\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        seen[path] = open(path).read()\n"
        "    except OSError as exc:\n"
        "        seen[path] = type(exc).__name__\n"
        "print(json.dumps(seen))\n"
    )
    secret = tree.parent / "outside" / "secret.txt"
    key = tree.parent / "home" / ".ssh" / "id_ed25519"
    marker = uuid.uuid4().hex
    result = run_sandboxed(python(code, str(secret), str(key), marker), tree)
    seen = json.loads(result.stdout)
    assert seen[str(secret)] == "FileNotFoundError"
    assert seen[str(key)] == "FileNotFoundError"
    assert_contained(tree, before, marker)


def test_writing_outside_the_work_tree_changes_nothing(tree: Path) -> None:
    shown = tree.parent / "outside"  # made visible, read-only, the way an environment is
    before = outside_state(tree)
    code = (
        "import sys\n"
        "failures = 0\n"
        "for path in sys.argv[1:3]:\n"
        "    try:\n"
        "        open(path, 'w').write('overwritten')\n"
        "    except OSError:\n"
        "        failures += 1\n"
        "print(failures)\n"
    )
    marker = uuid.uuid4().hex
    targets = [str(shown / "secret.txt"), str(Path(PY).resolve().parent / f"planted-{marker}")]
    result = run_sandboxed(python(code, *targets, marker), tree, read_only=[shown])
    assert result.stdout == b"2\n", result.stderr
    assert not Path(targets[1]).exists()
    assert_contained(tree, before, marker)


def test_a_socket_reaches_nothing(tree: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    before = outside_state(tree)
    code = (
        "import socket, sys\n"
        "for host in ('127.0.0.1', '1.1.1.1'):\n"
        "    try:\n"
        "        socket.create_connection((host, int(sys.argv[1])), timeout=2)\n"
        "        print('connected', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, exc.errno)\n"
    )
    marker = uuid.uuid4().hex
    result = run_sandboxed(python(code, str(port), marker), tree, Limits(wall_s=30))
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing waits to be accepted: no connection was made
        listener.accept()
    listener.close()
    assert b"connected" not in result.stdout, result.stdout
    assert result.stdout.count(b"refused") == 2
    assert_contained(tree, before, marker)


@pytest.mark.slow
def test_a_fork_bomb_is_contained_and_killed(tree: Path) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_sandboxed(python(code, marker), tree, Limits(wall_s=3, processes=32))
    assert result.stopped_by == "time"
    assert_contained(tree, before, marker)


def test_a_process_left_in_the_background_dies_with_the_command(tree: Path) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    code = (
        "import os, subprocess, sys\n"
        "subprocess.Popen(['sleep', '1000', sys.argv[1]], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print('detached')\n"
    )
    result = run_sandboxed(python(code, marker), tree)
    assert result.ok and result.stdout == b"detached\n", result
    assert_contained(tree, before, marker)


@pytest.mark.slow
def test_filling_the_work_tree_is_stopped(tree: Path) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    code = (
        "import os\n"
        "block = os.urandom(1 << 20)\n"
        "for i in range(256):  # 1 GiB at most, should the sandbox fail to stop it\n"
        "    with open(f'fill-{i}', 'wb') as f:\n"
        "        for _ in range(4):\n"
        "            f.write(block)\n"
        "        f.flush()\n"
        "        os.fsync(f.fileno())\n"
    )
    result = run_sandboxed(python(code, marker), tree, Limits(wall_s=120, disk_bytes=32 * MiB, file_bytes=8 * MiB))
    written = sum(path.stat().st_size for path in tree.glob("fill-*"))
    assert result.stopped_by == "disk", result
    assert 32 * MiB < written < 1024 * MiB
    assert_contained(tree, before, marker)


def test_a_file_larger_than_the_limit_cannot_be_written(tree: Path) -> None:
    code = "try:\n    open('big', 'wb').write(b'x' * (3 << 20))\nexcept OSError as exc:\n    print(exc.errno)\n"
    result = run_sandboxed(python(code), tree, Limits(file_bytes=1 * MiB))
    assert result.stdout == b"27\n", result  # EFBIG
    assert (tree / "big").stat().st_size <= 1 * MiB


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_filling_tmp_stops_at_its_size(tree: Path, folder: str) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    code = (
        "import sys\n"
        "written = 0\n"
        "try:\n"
        "    with open(sys.argv[1] + '/fill', 'wb') as f:\n"
        "        while True:\n"
        "            f.write(b'x' * 65536)\n"
        "            f.flush()\n"
        "            written += 65536\n"
        "except OSError as exc:\n"
        "    print(exc.errno, written)\n"
    )
    result = run_sandboxed(python(code, folder, marker), tree, Limits(tmp_bytes=4 * MiB))
    errno, written = result.stdout.split()
    assert int(errno) == 28  # ENOSPC
    assert int(written) <= 4 * MiB
    assert_contained(tree, before, marker)


def test_printing_a_gigabyte_is_cut_off(tree: Path) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    code = "import sys\nchunk = 'x' * 65536\nfor _ in range(16384):\n    sys.stdout.write(chunk)\n"
    result = run_sandboxed(python(code, marker), tree, Limits(output_bytes=1 * MiB))
    assert result.stopped_by == "output"
    assert result.stdout_truncated
    assert len(result.stdout) + len(result.stderr) <= 1 * MiB
    assert_contained(tree, before, marker)


def test_sleeping_forever_stops_at_the_wall_limit(tree: Path) -> None:
    before = outside_state(tree)
    marker = uuid.uuid4().hex
    result = run_sandboxed(python("import time; time.sleep(10_000)", marker), tree, Limits(wall_s=1))
    assert result.timed_out
    assert result.exit_code != 0
    assert_contained(tree, before, marker)


def test_allocating_past_the_memory_limit_fails_inside(tree: Path) -> None:
    code = "try:\n    b = bytearray(2 << 30)\nexcept MemoryError:\n    print('refused')\n"
    result = run_sandboxed(python(code), tree, Limits(memory_bytes=512 * MiB))
    assert result.stdout == b"refused\n", result


def test_the_command_sees_only_the_environment_it_is_given(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "do-not-leak")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    result = run_sandboxed(python(code), tree, env={"EXTRA": "1"})
    seen = json.loads(result.stdout)
    assert "GITHUB_TOKEN" not in seen
    assert seen["EXTRA"] == "1"
    assert seen["HOME"] == "/tmp"


def test_a_symlink_left_in_the_tree_does_not_hand_its_target_over(tree: Path) -> None:
    target = tree.parent / "outside" / "secret.txt"
    owner = target.stat().st_uid
    run_sandboxed(["ln", "-s", str(target), "link"], tree)
    assert (tree / "link").is_symlink()
    assert target.stat().st_uid == owner


def test_without_bubblewrap_the_error_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match="bubblewrap") as caught:
        require_bubblewrap()
    assert "\n" not in str(caught.value)
    assert "apt-get install bubblewrap" in str(caught.value)


def test_the_command_holds_no_capability_and_cannot_gain_one(tree: Path) -> None:
    result = run_sandboxed(["grep", "-E", "^(CapPrm|CapEff|CapAmb|NoNewPrivs|Uid):", "/proc/self/status"], tree)
    status = dict(line.split(":", 1) for line in result.stdout.decode().splitlines())
    assert {key: status[key].strip() for key in ("CapPrm", "CapEff", "CapAmb")} == {
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapAmb": "0000000000000000",
    }
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Uid"].split()[0] != "0"


def test_multiprocessing_works_inside(tree: Path) -> None:
    code = (
        "import multiprocessing\n"
        "with multiprocessing.get_context('spawn').Pool(2) as pool:\n"
        "    print(sum(pool.map(abs, [-1, -2, -3])))\n"
    )
    result = run_sandboxed(python(code), tree, Limits(wall_s=60))
    assert result.ok and result.stdout == b"6\n", result.stderr[-2000:]


def test_the_sandboxs_own_loopback_works(tree: Path) -> None:
    code = (
        "import socket\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "client = socket.create_connection(server.getsockname(), timeout=5)\n"
        "accepted, _ = server.accept()\n"
        "client.sendall(b'ping')\n"
        "print(accepted.recv(4).decode())\n"
    )
    result = run_sandboxed(python(code), tree)
    assert result.ok and result.stdout == b"ping\n", result.stderr[-2000:]


def test_confinement_programs_planted_on_the_path_are_never_run(tree: Path) -> None:
    planted = tree / "venv" / "bin"  # an environment's bin folder: first on PATH, writable while it builds
    planted.mkdir(parents=True)
    marker = tree / "planted-program-ran"
    for tool in ("setpriv", "prlimit", "choom"):
        fake = planted / tool
        fake.write_text(f'#!/bin/sh\necho {tool} >> {marker}\nexec /usr/bin/{tool} "$@"\n')
        fake.chmod(0o755)
    result = run_sandboxed(python("print('ran')"), tree, path_prefix=[planted])
    assert result.ok and result.stdout == b"ran\n", result
    assert not marker.exists(), f"a planted program ran: {marker.read_text()}"


def test_the_command_is_the_first_victim_when_memory_runs_out(tree: Path) -> None:
    result = run_sandboxed(["cat", "/proc/self/oom_score_adj"], tree)
    assert result.stdout == b"1000\n", result


def test_a_folder_chain_deeper_than_a_walk_goes_is_stopped_and_removed(tree: Path) -> None:
    marker = uuid.uuid4().hex
    code = "import os, time\nfor _ in range(1500):\n    os.mkdir('d')\n    os.chdir('d')\ntime.sleep(10_000)\n"
    result = run_sandboxed(python(code, marker), tree, Limits(wall_s=20))
    assert result.stopped_by == "disk", result
    assert leftover_processes(marker) == [], "a process of the sandboxed command outlived it"
    remove_tree(tree)
    assert not tree.exists()


def test_files_dated_in_the_past_still_count_against_the_disk_limit(tree: Path) -> None:
    code = (
        "import os, time\n"
        "for i in range(12):  # 48 MB\n"
        "    with open(f'old-{i}', 'wb') as f:\n"
        "        f.write(os.urandom(4 << 20))\n"
        "    os.utime(f'old-{i}', (0, 0))\n"
        "time.sleep(10_000)\n"
    )
    result = run_sandboxed(python(code), tree, Limits(wall_s=10, disk_bytes=16 * MiB))
    assert result.stopped_by == "disk", result


def test_making_folders_without_end_is_stopped(tree: Path) -> None:
    code = "import os, time\nfor i in range(5000):\n    os.mkdir(f'd{i}')\ntime.sleep(10_000)\n"
    result = run_sandboxed(python(code), tree, Limits(wall_s=10, entries=1000))
    assert result.stopped_by == "disk", result
    assert len(list(tree.iterdir())) < 5000 or result.wall_s < 10
