"""Shared by the execution tests: settings whose ``SWERL_HOME`` holds one built environment for ``acme/calc``
(pytest from the package index), made once per test process and reused by every module (a build takes ~8 s)."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

from swerl_core.config import Settings, load_settings
from swerl_core.execution import ExecutableInstance

REPO = "acme/calc"
DECLARATION = f'- {{repo: {REPO}, requirements: ["pytest"]}}'
BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
TESTS = "from calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
NEW_TEST = "\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@functools.cache
def shared_home() -> Path:
    """A ``SWERL_HOME`` for this process, removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="swerl-execution-tests-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def pytest_settings(execution: str = "", home: Path | None = None) -> Settings:
    """Settings declaring :data:`REPO` with pytest, on the shared home unless ``home`` is given; ``execution`` adds
    keys to the ``execution`` section (YAML, one per line)."""
    lines = [f"home: {home or shared_home()}", "execution:"]
    lines += [f"  {line.strip()}" for line in execution.splitlines() if line.strip()]
    lines += ["  environments:", f"    {DECLARATION}"]
    config = Path(tempfile.mkdtemp(prefix="swerl-settings-")) / "settings.yaml"
    config.write_text("\n".join(lines) + "\n")
    try:
        return load_settings(config, env={})
    finally:
        shutil.rmtree(config.parent, ignore_errors=True)


def calc_instance(repo: Path) -> ExecutableInstance:
    """A repository at ``repo`` with the bug in ``add`` at its one commit, and its instance: the pull request adds
    ``test_add`` (FAIL_TO_PASS) beside ``test_zero`` (PASS_TO_PASS); the fix is :data:`FIXED`."""
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "calc.py").write_text(BUGGY)
    (repo / "test_calc.py").write_text(TESTS)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return ExecutableInstance(
        instance_id="acme__calc-1",
        repo=REPO,
        base_commit=git(repo, "rev-parse", "HEAD").strip(),
        fail_to_pass=("test_calc.py::test_add",),
        pass_to_pass=("test_calc.py::test_zero",),
        test_patch=diff_of(repo, "test_calc.py", TESTS + NEW_TEST),
    )


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def diff_of(repo: Path, path: str, content: str) -> str:
    """The diff that turns ``path`` of ``repo``'s work tree into ``content`` (the tree is left as it was)."""
    original = (repo / path).read_text()
    (repo / path).write_text(content)
    patch = git(repo, "diff", "--", path)
    (repo / path).write_text(original)
    return patch


def escape_attempts(outside: Path, hidden: Path, port: int) -> str:
    """Python source for the top of a module a test imports: it tries to write ``outside`` (outside the work tree),
    to see ``hidden`` (a folder the sandbox must hide: swerl's home, a mirror) and to reach a socket listening on the
    host at ``port``, and fails the import, naming what worked, if any of them does. Prepended to a correct fix, the
    fix resolves exactly when every attempt was refused."""
    return f"""import pathlib as _p, socket as _s
_escaped = []
try:
    _p.Path({str(outside)!r}).write_text("escaped")
    _escaped.append("wrote outside")
except OSError:
    pass
if _p.Path({str(hidden)!r}).exists():
    _escaped.append("sees a hidden folder")
try:
    _s.create_connection(("127.0.0.1", {port}), timeout=2).close()
    _escaped.append("reached the host")
except OSError:
    pass
if _escaped:
    raise SystemExit("escaped: " + ", ".join(_escaped))
"""
