"""The ``swerl`` command line: help, the demo, and one-line errors."""

from __future__ import annotations

import re
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


@pytest.mark.slow
def test_demo_runs_every_stage_on_the_sample_world(capsys: pytest.CaptureFixture[str], swerl_home: Path) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "+1.0000  the developer's fix" in out
    assert "-1.0000  no <think> tag  (<think> appears 0 times, expected once)" in out
    assert "acme/textkit: 30 new, 0 updated, 2 skipped" in out
    assert re.search(r"snapshot [0-9a-f]{16} \(new\): 17 train, 5 held-out", out), out
    assert re.search(r"GRPO: 4 steps in \d+ s", out), out
    assert re.search(r"swerl-policy v1: gate (pass|fail|inconclusive)", out), out
    assert (swerl_home / "swerl.duckdb").is_file() and (swerl_home / "mlflow.db").is_file()
    assert len(list((swerl_home / "checkpoints").glob("demo-cpu-grpo-*/final/model.safetensors"))) == 1


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("github:\n  per_page: 1000\n")
    result = run_cli("--config", str(config), "demo")
    assert result.returncode == 2
    assert result.stderr.strip() == "swerl demo: invalid setting github.per_page: expected an integer in 1..100"
