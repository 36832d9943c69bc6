"""SWE-bench Verified from a user-supplied instance file: oracle files read at base_commit from a git mirror,
predictions in the harness's format, and a clear note when no Docker engine can run the harness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from eval_world import ScriptedBackend, make_settings, oracle_output

from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.evaluation import evaluate_swebench
from swerl_core.evaluate.predictions import read_predictions
from swerl_core.evaluate.swebench import read_instance_file, swebench_instances

OLD = "def area(w, h):\n    return w + h\n"
NEW = "def area(w, h):\n    return w * h\n"


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"
    (work / "geo").mkdir(parents=True)
    _git(work, "init", "-q")
    (work / "geo" / "shapes.py").write_text(OLD)
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "base")
    base = _git(work, "rev-parse", "HEAD").strip()
    (work / "geo" / "shapes.py").write_text(NEW)
    patch = _git(work, "diff")
    home = tmp_path / "home"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(home / "mirrors" / "acme__geo.git")], check=True)
    row = {
        "instance_id": "acme__geo-7",
        "repo": "acme/geo",
        "base_commit": base,
        "patch": patch,
        "problem_statement": "area() adds the sides instead of multiplying them",
    }
    instance_file = tmp_path / "verified.jsonl"
    instance_file.write_text(json.dumps(row) + "\n")
    return home, instance_file


def test_oracle_files_come_from_the_mirror_at_base_commit(world: tuple[Path, Path]) -> None:
    home, instance_file = world
    [inst] = swebench_instances(read_instance_file(instance_file), home / "mirrors")
    assert inst.code_context == {"geo/shapes.py": OLD} and inst.oracle_new_content == {"geo/shapes.py": NEW}


@pytest.mark.slow
def test_predictions_are_written_and_the_missing_docker_engine_is_reported(
    world: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, instance_file = world
    bin_dir = tmp_path / "bin"  # a PATH with git and nothing else: no docker
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    backend = ScriptedBackend(lambda m, k: oracle_output({"geo/shapes.py": OLD}, {"geo/shapes.py": NEW}))
    report = evaluate_swebench(make_settings(home), "my-model", instance_file, backend=backend)
    assert report.resolved_rate is None
    assert report.harness_note is not None and "no `docker` command" in report.harness_note
    assert report.metrics.exact_match_rate == 1.0 and report.split == "swebench-verified"
    [line] = read_predictions(report.predictions_path.parent / "harness_predictions.jsonl")
    assert line["instance_id"] == "acme__geo-7" and line["model_name_or_path"] == "my-model"
    assert "-    return w + h\n+    return w * h" in str(line["model_patch"])


def test_instance_without_a_mirror_names_the_fix(world: tuple[Path, Path]) -> None:
    home, instance_file = world
    with pytest.raises(EvaluateError, match="no git mirror of acme/geo .*not been ingested"):
        swebench_instances(read_instance_file(instance_file), home / "elsewhere")
