"""SWE-bench Verified, the paper's headline (repair with oracle files, greedy): prompts, predictions, harness.

The user supplies the instance file (JSONL or Parquet with ``instance_id``, ``repo``, ``base_commit``,
``problem_statement``, ``patch``); this module never downloads it. The code context is every file the
gold patch touches, read at ``base_commit`` from the repository's git mirror; the oracle's new contents
come from applying the gold patch to those files in a temporary directory. A record that lists its
tests (``FAIL_TO_PASS``, ``PASS_TO_PASS``, ``test_patch``) is executable: where its repository declares an
environment, swerl's sandbox decides "resolved" (:mod:`.resolved`). The official harness (``swebench``
package) runs only when a Docker engine answers: the resolved rate when swerl's sandbox did not run, a
reference beside it when it did; without either, :func:`run_harness` says so and no resolved rate is
recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.checkout import safe_target
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.execution.resolution import ExecutableInstance, swebench_instance
from swerl_core.git import GitError, Mirror, mirror_path, run_git
from swerl_core.git.command import first_error_line, git_argv, git_env
from swerl_core.paths import is_work_tree_path
from swerl_core.reward import unidiff_changes

REQUIRED = ("instance_id", "repo", "base_commit", "problem_statement", "patch")


@dataclass(frozen=True)
class HarnessResult:
    """Outcome of the official harness: ``ran`` False with the reason when it could not run."""

    ran: bool
    reason: str
    resolved: int = 0
    total: int = 0

    @property
    def resolved_rate(self) -> float | None:
        """Resolved instances over submitted ones, or ``None`` when the harness did not run."""
        return self.resolved / self.total if self.ran and self.total else None


def read_instance_file(path: Path) -> list[dict[str, str]]:
    """Rows of a SWE-bench instance file (``.jsonl``/``.json`` or ``.parquet``), checked for the needed columns."""
    if not path.exists():
        raise EvaluateError(f"no instance file at {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        text = path.read_text(encoding="utf-8")
        try:
            rows = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x]
        except json.JSONDecodeError as exc:
            raise EvaluateError(f"{path} is not valid JSON lines: {exc}") from None
    for row in rows:
        missing = [c for c in REQUIRED if not row.get(c)]
        if missing:
            raise EvaluateError(f"{path}: instance {row.get('instance_id', '?')} lacks {', '.join(missing)}")
    return rows


def swebench_instances(rows: list[dict[str, str]], mirrors_dir: Path) -> list[EvalInstance]:
    """Evaluation instances from SWE-bench rows: oracle files read at ``base_commit`` from each mirror."""
    instances = []
    for row in rows:
        git_dir = mirror_path(mirrors_dir, row["repo"])
        if not (git_dir / "HEAD").exists():
            raise EvaluateError(f"no git mirror of {row['repo']} at {git_dir}: the repository has not been ingested")
        if Mirror(git_dir).missing_commits([row["base_commit"]]):
            raise EvaluateError(f"{row['instance_id']}: commit {row['base_commit']} is not in {git_dir}")
        paths = sorted(unidiff_changes(row["patch"]))
        context = {p: c for p in paths if (c := _file_at(git_dir, row["base_commit"], p)) is not None}
        instances.append(
            EvalInstance(
                instance_id=row["instance_id"],
                repo=row["repo"],
                problem_statement=row["problem_statement"],
                code_context=context,
                oracle_new_content=patched_files(context, row["patch"], row["instance_id"]),
                base_commit=row["base_commit"],
                execution=_executable(row),
            )
        )
    return instances


def _executable(row: dict[str, str]) -> ExecutableInstance | None:
    """The tests of a record that lists them (``FAIL_TO_PASS``, as SWE-bench's datasets do); None otherwise."""
    if not row.get("FAIL_TO_PASS"):
        return None
    try:
        return swebench_instance(row)
    except ValueError as exc:
        raise EvaluateError(str(exc)) from None


def patched_files(files: dict[str, str], patch: str, instance_id: str) -> dict[str, str]:
    """Contents of the files ``patch`` touches after applying it (with ``git apply``) to ``files`` in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="swerl-gold-") as tmp:
        root = Path(tmp)
        for path, content in files.items():
            target = safe_target(root, path)
            if target is None:
                raise EvaluateError(f"{instance_id}: the gold patch names an unsafe path {path!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        # No repository discovery above the temp dir: paths stay relative to it.
        env = git_env({"GIT_CEILING_DIRECTORIES": str(root.parent)})
        proc = subprocess.run(
            git_argv(None, ["apply", "-"]), cwd=root, input=patch.encode(), capture_output=True, env=env, check=False
        )
        if proc.returncode != 0:
            reason = first_error_line(proc.stderr)
            raise EvaluateError(f"{instance_id}: the gold patch does not apply at base_commit ({reason})")
        return {path: _read_in_tree(root, path, instance_id) for path in unidiff_changes(patch)}


def _read_in_tree(root: Path, path: str, instance_id: str) -> str:
    """A patched file's content, never following a symbolic link: a link reads as its target text (as git stores it)."""
    if not is_work_tree_path(path):
        raise EvaluateError(f"{instance_id}: the gold patch names an unsafe path {path!r}")
    target = root / path
    if any(parent.is_symlink() for parent in target.parents if parent != root and root in parent.parents):
        raise EvaluateError(f"{instance_id}: the gold patch reaches {path!r} through a symbolic link")
    if target.is_symlink():
        return os.readlink(target)
    return target.read_text(encoding="utf-8") if target.exists() else ""


def _file_at(git_dir: Path, commit: str, path: str) -> str | None:
    try:
        data = run_git(git_dir, ["show", f"{commit}:{path}"])
    except GitError:
        return None  # the gold patch creates this file
    return data.decode("utf-8", "replace")


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers ``docker info``, with the reason when it does not."""
    docker = shutil.which("docker")
    if docker is None:
        return False, "no `docker` command on PATH"
    try:
        proc = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`docker info` failed: {exc}"
    if proc.returncode != 0:
        return False, "`docker info` failed: the Docker engine is not running or not reachable"
    return True, "docker engine found"


def run_harness(
    instance_file: Path, predictions: Path, model_name: str, run_id: str, workers: int, out_dir: Path
) -> HarnessResult:
    """Run the official SWE-bench harness on ``predictions`` when Docker and ``swebench`` are present."""
    ok, reason = docker_available()
    if not ok:
        return HarnessResult(False, f"SWE-bench harness not run: {reason}; resolved rate not computed")
    try:
        import swebench  # noqa: F401
    except ImportError:
        return HarnessResult(False, "SWE-bench harness not run: the `swebench` package is not installed")
    argv = [
        sys.executable,
        "-m",
        "swebench.harness.run_evaluation",
        "--dataset_name",
        str(instance_file),
        "--predictions_path",
        str(predictions),
        "--run_id",
        run_id,
        "--max_workers",
        str(workers),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, cwd=out_dir, capture_output=True, text=True, check=False)
    report = out_dir / f"{model_name.replace('/', '__')}.{run_id}.json"
    if proc.returncode != 0 or not report.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return HarnessResult(False, f"SWE-bench harness failed (exit {proc.returncode}): {tail[0]}")
    summary = json.loads(report.read_text(encoding="utf-8"))
    return HarnessResult(
        True, "ran", int(summary.get("resolved_instances", 0)), int(summary.get("submitted_instances", 0))
    )
