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

from swerl_core.config import load_settings
from swerl_core.errors import SwerlError
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


def test_gold_patch_adding_a_symlink_out_of_the_tree_is_never_followed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q")
    (work / "a.py").write_text(OLD)
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "base")
    base = _git(work, "rev-parse", "HEAD").strip()
    secret = tmp_path / "outside.txt"
    secret.write_text("secret outside the checkout\n")
    (work / "leak").symlink_to(secret)
    _git(work, "add", "leak")
    patch = _git(work, "diff", "--cached")
    mirrors = tmp_path / "home" / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "acme__geo.git")], check=True)
    row = {"instance_id": "acme__geo-8", "repo": "acme/geo", "base_commit": base, "patch": patch,
           "problem_statement": "p"}  # fmt: skip
    [inst] = swebench_instances([row], mirrors)
    assert "secret" not in json.dumps(inst.oracle_new_content)
    assert inst.oracle_new_content == {"leak": str(secret)}  # the link's own text, as git stores it


@pytest.mark.parametrize("repo", ["../../tmp/x", "acme/..", "acme/geo/../../x", "acme", "ac me/geo"])
def test_instance_repo_that_is_not_owner_name_is_refused(world: tuple[Path, Path], repo: str) -> None:
    home, instance_file = world
    [row] = read_instance_file(instance_file)
    with pytest.raises(SwerlError, match="not a valid OWNER/NAME"):
        swebench_instances([{**row, "repo": repo}], home / "mirrors")


def test_mirror_reached_through_a_symlink_out_of_home_is_refused(world: tuple[Path, Path], tmp_path: Path) -> None:
    home, instance_file = world
    outside = tmp_path / "outside.git"
    (home / "mirrors" / "acme__geo.git").rename(outside)
    (home / "mirrors" / "acme__geo.git").symlink_to(outside)
    with pytest.raises(SwerlError, match="leads outside"):
        swebench_instances(read_instance_file(instance_file), home / "mirrors")


@pytest.mark.slow
def test_a_record_listing_its_tests_is_resolved_in_swerls_sandbox_with_the_harness_as_reference(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    home, _ = world
    work = tmp_path / "work"
    tests = "from geo.shapes import area\n\n\ndef test_zero():\n    assert area(0, 0) == 0\n"
    (work / "tests").mkdir()
    (work / "tests" / "test_shapes.py").write_text(tests)
    (work / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    _git(work, "checkout", "-q", "--", "geo")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "tests")
    base = _git(work, "rev-parse", "HEAD").strip()
    (work / "tests" / "test_shapes.py").write_text(tests + "\n\ndef test_area():\n    assert area(2, 3) == 6\n")
    test_patch = _git(work, "diff")
    _git(work, "checkout", "-q", "--", ".")
    (work / "geo" / "shapes.py").write_text(NEW)
    patch = _git(work, "diff")
    _git(work, "checkout", "-q", "--", ".")
    _git(home / "mirrors" / "acme__geo.git", "fetch", "-q", str(work), "+HEAD:refs/heads/main")
    row = {
        "instance_id": "acme__geo-8", "repo": "acme/geo", "base_commit": base, "patch": patch,
        "problem_statement": "area() adds the sides instead of multiplying them", "test_patch": test_patch,
        "FAIL_TO_PASS": json.dumps(["tests/test_shapes.py::test_area"]),
        "PASS_TO_PASS": json.dumps(["tests/test_shapes.py::test_zero"]),
    }  # fmt: skip
    instance_file = tmp_path / "verified-with-tests.jsonl"
    instance_file.write_text(json.dumps(row) + "\n")
    config = tmp_path / "settings.yaml"
    config.write_text('execution:\n  environments:\n    - {repo: acme/geo, requirements: ["pytest"]}\n')
    settings = load_settings(config, env={}, overrides={"home": home, "reward.workers": 1, "evaluate.samples": 2,
                             "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}"})  # fmt: skip
    right = oracle_output({"geo/shapes.py": OLD}, {"geo/shapes.py": NEW})
    wrong = oracle_output({"geo/shapes.py": OLD}, {"geo/shapes.py": OLD.replace("w + h", "w - h")})
    backend = ScriptedBackend(lambda m, k: [right, wrong][k])
    report = evaluate_swebench(settings, "my-model", instance_file, backend=backend)
    assert report.execution is not None and report.resolved_rate == report.execution.resolved_rate == 0.5
    assert [line["resolution"] for line in read_predictions(report.predictions_path)] == ["resolved", "tests_failed"]
    assert report.execution.calibration.roc_auc == 1.0, "the right answer has the higher reward"
    if shutil.which("docker") is None:  # the official harness stays the reference where Docker exists
        assert report.harness_note is not None and "SWE-bench harness not run" in report.harness_note
