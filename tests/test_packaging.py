"""An installed swerl (a built wheel, not the source tree) carries what it needs at run time: the CLI runs, and the
package finds ``deployments/prefect.yaml``, the GPU work pool's job template, the recipes (by name) and the DeepSpeed
configs they name, and the deployments' flows by module, from a directory that is not the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Run inside the installed copy: everything it prints must point into the --target folder.
PROBE = """
import json, swerl_core, flows
from prefect.flows import load_flow_from_entrypoint
from swerl_core import package_files, stack
from swerl_core.demo.walkthrough import RECIPE
from swerl_core.train.config import load_train_config
names = package_files.recipe_names()
print(json.dumps({
    "swerl_core": swerl_core.__file__,
    "flows": flows.__file__,
    "prefect_file": str(stack.PREFECT_FILE) if stack.PREFECT_FILE.is_file() else None,
    "gpu_template": str(stack.GPU_TEMPLATE) if stack.GPU_TEMPLATE.is_file() else None,
    "recipes": {name: str(package_files.recipe_path(name)) for name in names},
    "loaded": [load_train_config(name).name for name in names],
    "demo_recipe": load_train_config(RECIPE).name,
    "deepspeed": str(package_files.repository_file(load_train_config("llama3-8b").deepspeed)),
    "entrypoint": load_flow_from_entrypoint("flows.retrain.retrain").name,
}))
"""


def _not_source(folder: str, names: list[str]) -> set[str]:
    """What a build must not see: the repository root's outputs and data, caches anywhere."""
    root = {".git", ".venv", "build", "dist", "data"} if Path(folder) == REPO else set()
    return {n for n in names if n in root or n == "__pycache__" or n.endswith((".egg-info", "_cache"))}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree, installed with ``pip --target`` (its dependencies: the current venv's)."""
    root = tmp_path_factory.mktemp("wheel")
    # A clean copy: a build/ folder left in the tree would put stale files into the wheel.
    source = root / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=_not_source)
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("swerl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert (
        "swerl_core/deployments/prefect.yaml" in names
        and "swerl_core/infra/k8s/swerl-gpu-base-job-template.json" in names
        and "swerl_core/execution/pytest_plugin/swerl_test_report.py" in names
    )
    assert not any(n.startswith("swerl_core/infra/docker/") for n in names), "only what runs is packaged"
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def _elsewhere(installed: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the repository and an environment whose only swerl is the installed one."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SWERL_"))}
    env.update(PYTHONPATH=str(installed), PYTHONNOUSERSITE="1", SWERL_HOME=str(tmp_path / "home"))
    return cwd, env


@pytest.mark.slow
def test_the_installed_package_finds_its_files_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    cwd, env = _elsewhere(installed, tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    inside = {key: found[key] for key in ("swerl_core", "flows", "prefect_file", "gpu_template", "deepspeed")}
    inside.update(found["recipes"])
    outside = {key: path for key, path in inside.items() if not (path and Path(path).is_relative_to(installed))}
    assert not outside, f"not served by the installed package: {outside}"
    assert set(found["recipes"]) == {"demo-cpu", "learnable-cpu", "toy-cpu", "llama3-8b", "llama3-70b"}
    assert found["loaded"] == sorted(found["recipes"]) and found["demo_recipe"] == "demo-cpu"
    assert found["entrypoint"] == "retrain"


@pytest.mark.slow
def test_the_installed_swerl_command_runs_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    cwd, env = _elsewhere(installed, tmp_path)
    for args in (["--help"], ["demo", "--help"], ["train", "--help"]):
        done = subprocess.run(
            [str(installed / "bin" / "swerl"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and "usage: swerl" in done.stdout, done.stderr
    assert "learnable-cpu" in done.stdout, "train --help lists the shipped recipes"
    rollout = subprocess.run(
        [str(installed / "bin" / "swerl-rollout"), "--help"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert rollout.returncode == 0 and "usage: swerl-rollout" in rollout.stdout, rollout.stderr
    status = subprocess.run(
        [sys.executable, "-m", "swerl_core.stack", "status"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert status.returncode == 0 and "prefect-server: stopped" in status.stdout, status.stderr
