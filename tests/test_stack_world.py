"""The demo's world server (``swerl_core.stack.serve_world``): the learnable world served in the background,
reused while it runs, and a server that an older demo left running with another world, or another size, replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from swerl_core.stack import Stack, StackError, serve_world, stop


def _repo(url: str, name: str, token: str) -> str:
    request = urllib.request.Request(f"{url}/repos/{name}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["full_name"])


def _pull_count(url: str, name: str, token: str) -> int:
    request = urllib.request.Request(
        f"{url}/repos/{name}/pulls?state=closed&per_page=100", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return len(json.load(response))


@pytest.mark.slow
def test_a_server_of_another_world_is_replaced_and_the_right_one_reused(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "home", 0, 0)  # serve_world needs no port of its own
    stack.run_dir.mkdir(parents=True)
    env = {**os.environ, "SWERL_HOME": str(stack.home)}
    # An older demo's server: a live process under the recorded command line, whose URL file names no world.
    older = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "-m", "swerl_core.stack"], start_new_session=True
    )
    try:
        (stack.run_dir / "github.pid").write_text(f"{older.pid}\n-m swerl_core.stack\n")
        (stack.run_dir / "github.url").write_text("http://127.0.0.1:9\n")
        url = serve_world(stack, "world-token", env, prs_per_repo=20)
        assert older.wait(timeout=30) is not None, "the older world's server is still running"
        assert _repo(url, "learn/shop", "world-token") == "learn/shop"
        assert _pull_count(url, "learn/shop", "world-token") == 20
        assert serve_world(stack, "world-token", env, prs_per_repo=20) == url, "a server of the right world is reused"
        bigger = serve_world(stack, "world-token", env, prs_per_repo=30)
        assert _pull_count(bigger, "learn/shop", "world-token") == 30, "a server of another size was kept"
        # The URL file of the previous release named the repositories only: its server is another world's too.
        url_file = stack.run_dir / "github.url"
        url_file.write_text(f"{bigger}\n{url_file.read_text().splitlines()[1].split(' ')[0]}\n")
        again = serve_world(stack, "world-token", env, prs_per_repo=30)
        assert again != bigger and _pull_count(again, "learn/shop", "world-token") == 30
        with pytest.raises(StackError, match="at least 20"):
            serve_world(stack, "world-token", env, prs_per_repo=3)
    finally:
        older.kill()
        stop(stack)
