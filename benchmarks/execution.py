"""Execution cost, in one run: the sandbox's overhead per test run against the same run without it, and instances
validated per minute.

A generated repository (``--tests`` tests in one file, a bug and its fix) with its environment declared and built
once (pytest from the package index) under a temporary ``SWERL_HOME``. Measured, alternating so that both see the
same machine load:
- an empty command (``true``) under the sandbox vs a plain subprocess: the fixed cost of bubblewrap + the limits;
- the same named tests with the same pytest plugin, sandboxed (``run_named_tests``) vs run directly;
- ``validate_instance`` on generated pull requests (1 run before + ``gold_runs`` after, each), per minute.

The work tree also holds ``--tree-files`` small files in 20 folders: a real checkout's size, which the sandbox walks
(the disk watch measures it once; a root caller lends it to the run's uid and takes it back).

Usage: ``python benchmarks/execution.py [--repeats 10] [--tests 50] [--instances 3] [--tree-files 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from swerl_core.config import load_settings
from swerl_core.execution import (
    PullRequestCode,
    TestRun,
    ensure_environment,
    limits_for_tests,
    run_named_tests,
    run_sandboxed,
    validate_instance,
)
from swerl_core.execution.named_tests import PLUGIN, PLUGIN_DIR


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its output."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def make_repo(root: Path, tests: int, tree_files: int) -> tuple[str, str, str]:
    """A repository with a bug at its base and ``tree_files`` other files; returns the base commit, the test patch
    and the gold patch."""
    root.mkdir(parents=True)
    git(root, "init", "-q")
    for i in range(tree_files):
        folder = root / "pkg" / f"sub{i % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 20)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    body = "from calc import add\n" + "".join(
        f"\n\ndef test_zero_{i}():\n    assert add({i}, 0) == {i}\n" for i in range(tests)
    )
    (root / "test_calc.py").write_text(body)
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "base")
    base = git(root, "rev-parse", "HEAD").strip()
    (root / "test_calc.py").write_text(body + "\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    test_patch = git(root, "diff")
    git(root, "checkout", "-q", "--", ".")
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    gold = git(root, "diff")
    git(root, "checkout", "-q", "--", ".")
    return base, test_patch, gold


def timed(run: Callable[[], object]) -> float:
    """Seconds one call of ``run`` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--tree-files", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swerl-bench-exec-") as tmp:
        root = Path(tmp)
        config = root / "settings.yaml"
        config.write_text(
            f"home: {root / 'home'}\nexecution:\n  environments:\n    - repo: bench/calc\n"
            '      requirements: ["pytest"]\n'
        )
        settings = load_settings(config, env={})
        start = time.perf_counter()
        environment = ensure_environment(settings, "bench/calc")
        print(f"environment built in {time.perf_counter() - start:.1f} s")
        repo = root / "repo"
        base, test_patch, gold = make_repo(repo, args.tests, args.tree_files)
        ids = [f"test_calc.py::test_zero_{i}" for i in range(args.tests)]
        plain_env = {
            **os.environ,
            "PYTEST_PLUGINS": PLUGIN,
            "PYTHONPATH": str(PLUGIN_DIR),
            "SWERL_TEST_REPORT": str(root / "plain-report.jsonl"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        ids_file = root / "ids.json"
        ids_file.write_text(json.dumps(ids))
        plain_env["SWERL_TEST_IDS"] = str(ids_file)
        plain_argv = [str(environment.bin_dir / "python"), "-m", "pytest", "-p", "no:cacheprovider", "test_calc.py"]
        limits = limits_for_tests(settings.execution)
        times: dict[str, list[float]] = {"true": [], "true-sandboxed": [], "tests": [], "tests-sandboxed": []}
        runs: list[TestRun] = []
        for _ in range(args.repeats):
            times["true"].append(timed(lambda: subprocess.run(["true"], check=True)))
            times["true-sandboxed"].append(timed(lambda: run_sandboxed(["true"], repo, limits)))
            times["tests"].append(
                timed(lambda: subprocess.run(plain_argv, cwd=repo, env=plain_env, capture_output=True, check=True))
            )
            times["tests-sandboxed"].append(timed(lambda: runs.append(run_named_tests(environment, repo, ids, limits))))
            assert runs[-1].all_passed, runs[-1].sandbox.stdout[-2000:]
        median = {name: statistics.median(values) for name, values in times.items()}
        shape = f"{args.tree_files} files in the tree"
        print(f"median of {args.repeats} runs each, alternating (sandboxed vs plain), {shape}:")
        print(
            f"  empty command   plain {median['true'] * 1000:7.1f} ms   "
            f"sandboxed {median['true-sandboxed'] * 1000:7.1f} ms   "
            f"overhead {(median['true-sandboxed'] - median['true']) * 1000:+.1f} ms"
        )
        print(
            f"  {args.tests} named tests  plain {median['tests'] * 1000:7.1f} ms   "
            f"sandboxed {median['tests-sandboxed'] * 1000:7.1f} ms   overhead "
            f"{(median['tests-sandboxed'] - median['tests']) * 1000:+.1f} ms "
            f"({median['tests-sandboxed'] / median['tests']:.2f}x)"
        )
        pull = PullRequestCode("bench/calc", repo / ".git", base, gold_patch=gold, test_patch=test_patch)
        start = time.perf_counter()
        for i in range(args.instances):
            verdict = validate_instance(settings, pull, root / f"work-{i}")
            assert verdict.executable, verdict
        spent = time.perf_counter() - start
        print(
            f"validation: {args.instances} instances in {spent:.1f} s = {args.instances / spent * 60:.1f} per minute "
            f"({1 + settings.execution.gold_runs} sandboxed runs of {args.tests + 1} tests each)"
        )


if __name__ == "__main__":
    main()
