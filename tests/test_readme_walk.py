"""The README's "The pipeline by hand" block, run as written: one bash shell, line after line, in a fresh directory
with a fresh SWERL_HOME. A line ending in ``&`` (``swerl demo serve &``) runs in the background, and the walk goes
on once it has printed its URL; ``PORT`` is filled from what it printed. Every line must exit 0, except those whose
comment says ``refused``: they must exit non-zero with one ``swerl VERB: …`` line on stderr.

Comments are cut off before a line runs (each command's output goes to its own files); nothing else is changed.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy(170)  # seconds in make test: started first (tests/conftest.py)

REPO = Path(__file__).resolve().parent.parent
HEADING = "## The pipeline by hand"
DONE = "__swerl_walk_rc__"


def readme_block() -> list[str]:
    """The non-empty lines of the first ```bash block under the README's by-hand heading."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split(HEADING, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, f"no ```bash block under {HEADING!r}"
    return [line for line in match[1].splitlines() if line.strip()]


@dataclass(frozen=True)
class Step:
    """One line of the block as run: what ran, its exit code, its output."""

    line: str
    code: int
    out: str
    err: str
    seconds: float


class Shell:
    """One bash process fed a line at a time; each command's stdout and stderr land in files under ``logs``."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self.bash = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # the background server too: one process group to end
        )

    def run(self, command: str, timeout_s: float) -> Step:
        """Run ``command`` (a background one when it ends in ``&``) and return its exit code and output."""
        self.count += 1
        out, err = self.logs / f"{self.count}.out", self.logs / f"{self.count}.err"
        out.touch()  # a background command's files may appear only after its exit code of 0 is reported
        err.touch()
        background = command.endswith("&")
        body = command[:-1].rstrip() if background else command
        tail = "&" if background else ";"
        assert self.bash.stdin is not None
        started = time.monotonic()
        self.bash.stdin.write(f"{body} >{out} 2>{err} {tail} echo {DONE} $?\n")
        self.bash.stdin.flush()
        code = self._wait_done(timeout_s, command)
        seconds = time.monotonic() - started
        return Step(command, code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"), seconds)

    def _wait_done(self, timeout_s: float, command: str) -> int:
        assert self.bash.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            ready, _, _ = select.select([self.bash.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"`{command}` did not finish within {timeout_s:.0f} s")
            line = self.bash.stdout.readline()
            if not line:
                raise AssertionError(f"the shell exited during `{command}`")
            if line.startswith(DONE):
                return int(line.split()[1])

    def close(self) -> None:
        """End the shell and everything it started."""
        try:
            os.killpg(self.bash.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.bash.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.bash.pid, signal.SIGKILL)


def _printed_url(path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+", path.read_text(encoding="utf-8") if path.exists() else "")
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"the background server printed no URL in {timeout_s:.0f} s: {path.read_text()!r}")


def _walk_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SWERL_", "GITHUB_TOKEN", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV", "PYTHONHOME"))
    }
    env.update(SWERL_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(REPO))
    return env


def test_the_readme_block_lists_what_the_walk_needs() -> None:
    block = readme_block()
    assert block[0].startswith("source .venv/bin/activate"), block[0]
    assert any(re.sub(r"\s+#.*$", "", line).endswith("&") for line in block), "the server must run in the background"
    assert any("refused" in line for line in block), "the block documents which lines are refused"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_pipeline_by_hand_runs_as_written(tmp_path: Path) -> None:
    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    logs.mkdir()
    (work / ".venv").symlink_to(sys.prefix)  # `source .venv/bin/activate` at the repository root
    shell = Shell(work, _walk_env(tmp_path), logs)
    steps: list[Step] = []
    started = time.monotonic()
    try:
        url = ""
        for line in readme_block():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if "PORT" in command:
                assert url, f"`{command}` needs the port of a server started before it"
                command = command.replace("http://127.0.0.1:PORT", url)
            step = shell.run(command, timeout_s=600)
            steps.append(step)
            if command.endswith("&"):
                url = _printed_url(logs / f"{shell.count}.out", timeout_s=180)
                printed = [text.strip() for text in (logs / f"{shell.count}.out").read_text().splitlines()]
                export = next(ln for ln in readme_block() if ln.startswith("export SWERL_GITHUB_API_URL"))
                assert export.replace("http://127.0.0.1:PORT", url) in printed, "the README's export is not as printed"
            refused = "refused" in line.split("#", 1)[-1] if "#" in line else False
            where = f"`{command}` (exit {step.code})\nstdout: {step.out[-2000:]}\nstderr: {step.err[-2000:]}"
            if refused:
                lines = step.err.strip().splitlines()
                assert step.code != 0 and len(lines) == 1 and lines[0].startswith("swerl "), where
            else:
                assert step.code == 0, where
    finally:
        shell.close()
    seconds = time.monotonic() - started
    register = next(s for s in steps if s.line.startswith("swerl register"))
    assert (register.out + register.err).count("gate fail") == 1, "register says its verdict once"
    print(f"README walk: {len(steps)} lines in {seconds:.0f} s")
    for step in steps:
        print(f"  {step.seconds:6.1f} s  {step.line}")
