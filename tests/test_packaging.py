"""An installed swerl (not the source tree) carries what it needs at run time: the demo finds its recipe."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_built_wheel_runs_the_cli_and_finds_the_demo_recipe_outside_the_repository(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = tmp_path / "site"
    with zipfile.ZipFile(next(wheels.glob("swerl-*.whl"))) as wheel:
        wheel.extractall(site)  # installing a pure-Python wheel is unpacking it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "SWERL_HOME": str(tmp_path / "home")}
    help_text = subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", "demo", "--help"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert help_text.returncode == 0 and "sample world" in help_text.stdout, help_text.stderr
    probe = (
        "import swerl_core; from swerl_core.demo.walkthrough import RECIPE; "
        "from swerl_core.train.config import load_train_config; "
        "print(swerl_core.__file__); print(load_train_config(RECIPE).name)"
    )
    found = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    module_file, recipe_name = found.stdout.split()
    assert Path(module_file).is_relative_to(site) and recipe_name == "demo-cpu"
