"""Execution cost, in one run: the sandbox's overhead per test run against the same run without it, instances
validated per minute, answers resolved per minute one at a time and ``execution.workers`` at a time; and, from a
finished ``make demo``, the resolved rate and the reward's AUC of each evaluated stage.

A generated repository (``--tests`` tests in one file, a bug and its fix) with its environment declared and built
once (pytest from the package index) under a temporary ``SWERL_HOME``. Measured, alternating so that both see the
same machine load:
- an empty command (``true``) under the sandbox vs a plain subprocess: the fixed cost of bubblewrap + the limits;
- the same named tests with the same pytest plugin, sandboxed (``run_named_tests``) vs run directly;
- ``validate_instance`` on generated pull requests (1 run before + ``gold_runs`` after, each), per minute;
- evaluation's resolution of ``--answers`` distinct answers (a checkout, the patch, one sandboxed test run each),
  one at a time (``execution.workers: 1``) vs every core (``0``), per minute.

With ``--demo-home DIR`` (a ``make demo`` home, ``data`` by default there) it prints, instead, every evaluation the
demo recorded that ran answers against their tests: model, K, mean reward, resolved rate with its interval, the
reward's ROC AUC and rank correlation for "resolved".

The work tree also holds ``--tree-files`` small files in 20 folders: a real checkout's size, which the sandbox walks
(the disk watch measures it once; a root caller lends it to the run's uid and takes it back).

Usage: ``python benchmarks/execution.py [--repeats 10] [--tests 50] [--instances 3] [--answers 8]
[--tree-files 2000]`` or ``python benchmarks/execution.py --demo-home data``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from swerl_core.config import Settings, load_settings
from swerl_core.evaluate.checkout import git_patch
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import SampleResult
from swerl_core.evaluate.resolved import resolve_samples, summary_from_dict
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
from swerl_core.execution.resolution import ExecutableInstance
from swerl_core.git import mirror_path
from swerl_core.progress import ProgressReporter
from swerl_core.store import Store


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
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--tree-files", type=int, default=2000)
    parser.add_argument("--demo-home", type=Path, default=None)
    args = parser.parse_args()
    if args.demo_home is not None:
        demo_stages(args.demo_home)
        return
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
        resolution_rates(settings, repo, base, test_patch, gold, args.answers, args.tests)


def resolution_rates(
    settings: Settings, repo: Path, base: str, test_patch: str, gold: str, answers: int, tests: int
) -> None:
    """Resolve ``answers`` distinct answers (the gold fix under as many comments) one at a time, then on every core."""
    instance = ExecutableInstance("bench__calc-1", "bench/calc", base, ("test_calc.py::test_add",),
                                  tuple(f"test_calc.py::test_zero_{i}" for i in range(tests)), test_patch)  # fmt: skip
    mirror = mirror_path(settings.mirrors_dir, "bench/calc")
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(mirror)], check=True)
    context = {"calc.py": "def add(a, b):\n    return a - b\n"}
    eval_instance = EvalInstance("bench__calc-1", "bench/calc", "add subtracts", context, {}, base, instance)
    results = []
    for k in range(answers):
        fixed = f"# answer {k}\ndef add(a, b):\n    return a + b\n"
        results.append(SampleResult("bench__calc-1", "bench/calc", k, "", 0.5, None, True, (),
                                    git_patch("calc.py", context["calc.py"], fixed), 1))  # fmt: skip
    rates = {}
    for workers in (1, 0):
        chosen = dataclasses.replace(settings, execution=dataclasses.replace(settings.execution, workers=workers))
        start = time.perf_counter()
        judged = resolve_samples(chosen, [eval_instance], results, ProgressReporter("bench"))
        rates[workers] = answers / (time.perf_counter() - start) * 60
        assert all(r.resolution == "resolved" for r in judged), [r.resolution_detail for r in judged]
    print(
        f"resolution: {answers} distinct answers, one at a time {rates[1]:.1f} per minute, "
        f"every core ({os.cpu_count()}) {rates[0]:.1f} per minute ({rates[0] / rates[1]:.2f}x)"
    )


def demo_stages(home: Path) -> None:
    """Print each evaluation of a demo home that ran its answers against their tests, oldest first."""
    database = home / "swerl.duckdb"
    if not database.is_file():
        raise SystemExit(f"no swerl.duckdb under {home}: run make demo first (its home is data/)")
    with Store.open(database, read_only=True) as store, store.reading() as con:
        rows = con.execute(
            "SELECT model_ref, samples, mean_reward, execution_json FROM evaluations "
            "WHERE execution_json IS NOT NULL ORDER BY created_at"
        ).fetchall()
    if not rows:
        print(f"no evaluation under {home} ran its answers against their tests")
    print(f"{'model':<48} {'K':>2} {'reward':>7} {'resolved':>8} {'90% interval':<16} {'AUC':>5} {'rho':>6}")
    for model_ref, samples, mean_reward, execution_json in rows:
        summary = summary_from_dict(json.loads(execution_json))
        cal = summary.calibration
        interval = "-" if summary.lower is None else f"[{summary.lower:.2f}, {summary.upper:.2f}]"
        print(
            f"{'/'.join(Path(model_ref).parts[-2:]):<48} {samples:>2} {mean_reward:+7.3f} "
            f"{_share(summary.resolved_rate):>8} {interval:<16} {_number(cal.roc_auc):>5} {_number(cal.spearman):>6}"
        )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
