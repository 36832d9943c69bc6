"""The ``swerl`` command line: help, the demo, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swerl_core.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_lists_the_verbs() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_demo_shows_rewards_of_the_worked_example(capsys: pytest.CaptureFixture[str], swerl_home: Path) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "+1.0000  the developer's fix" in out
    assert "-1.0000  no <think> tag  (<think> appears 0 times, expected once)" in out


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("github:\n  per_page: 1000\n")
    result = run_cli("--config", str(config), "demo")
    assert result.returncode == 2
    assert result.stderr.strip() == "swerl demo: invalid setting github.per_page: expected an integer in 1..100"
