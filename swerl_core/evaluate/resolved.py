"""Resolved rate of an evaluation: each answer to an executable instance run against its tests in the sandbox.

An instance is executable when curation validated it (``execution`` is ``executable``: FAIL_TO_PASS and
PASS_TO_PASS known) or a SWE-bench record carries its lists, and its repository declares an environment here. Each
sample's patch is judged by :func:`swerl_core.execution.resolve` (SWE-bench's rule); an answer with no applicable
edits is ``did_not_apply`` without running anything, and equal patches of one instance are run once. A sample the
machine could not judge (no mirror, an environment that does not build) is ``not_run``, with why, and stays out of
the rate. Per evaluation: the resolved rate over executable instances (each the mean of its K samples) with its
bootstrap interval, the count of each reason, and how well the similarity reward predicts "resolved"
(:mod:`.calibration`). Runs the candidate's code only inside the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from swerl_core.config import Settings
from swerl_core.evaluate import EvaluateError
from swerl_core.evaluate.calibration import Calibration, ReliabilityBin, calibration
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import SampleResult
from swerl_core.evaluate.predictions import per_instance, resolved_value
from swerl_core.evaluate.protocol import execution_digest
from swerl_core.evaluate.uncertainty import bootstrap_interval
from swerl_core.execution import ExecutionError, SandboxUnavailable, ensure_environment, require_bubblewrap, resolve
from swerl_core.execution.cluster import resolve_on_cluster
from swerl_core.execution.errors import first_line
from swerl_core.execution.resolution import NOT_RUN, ExecutableInstance
from swerl_core.execution.sandbox import SandboxPool
from swerl_core.git import GitError, mirror_path
from swerl_core.progress import ProgressReporter

COLUMNS = ("resolved rate", "resolved 90% interval", "reward AUC for resolved", "reward-resolved rank correlation",
           "executable instances")  # fmt: skip
Verdict = tuple[str, str]  # (reason, detail)
INTERVAL = 0.9  # the resolved rate's interval, as for the mean reward (evaluate.uncertainty.report_interval)


@dataclass(frozen=True)
class ExecutionSummary:
    """What running the tests said about one evaluation: the resolved rate and the reward's calibration."""

    executable_instances: int
    judged_samples: int  # samples with a verdict (every reason but not_run)
    resolved_rate: float | None  # over judged instances, each the mean of its judged samples; None: none judged
    lower: float | None  # the INTERVAL bootstrap interval of the resolved rate, resampling instances
    upper: float | None
    reasons: Mapping[str, int]  # samples per reason, not_run included
    calibration: Calibration
    note: str = ""  # why some samples were not run
    seconds: float = 0.0  # wall time of the test runs

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (the ``execution`` part of ``metrics.json`` and of the store's row)."""
        return asdict(self)


def summary_from_dict(values: Mapping[str, Any]) -> ExecutionSummary:
    """The :class:`ExecutionSummary` :meth:`ExecutionSummary.as_dict` wrote."""
    cal = dict(values["calibration"])
    cal["reliability"] = tuple(ReliabilityBin(**b) for b in cal["reliability"])
    return ExecutionSummary(**{**values, "reasons": dict(values["reasons"]), "calibration": Calibration(**cal)})


def require_sandbox(settings: Settings, instances: Sequence[EvalInstance]) -> None:
    """Raise :class:`EvaluateError` when ``instances`` have answers to run against their tests and this machine cannot
    run the sandbox: checked before generating, which may take hours, rather than after."""
    if execution_digest(settings, instances) is None:
        return
    try:
        require_bubblewrap()
    except SandboxUnavailable as exc:
        raise _no_sandbox("", exc) from None


def resolve_samples(
    settings: Settings, instances: Sequence[EvalInstance], results: Sequence[SampleResult], say: ProgressReporter
) -> list[SampleResult]:
    """``results`` with each executable instance's samples judged (``resolution`` set); the others unchanged.

    Distinct patches run ``execution.workers`` at a time (each run is its own checkout and sandbox), or, under
    ``execution.backend: kubernetes``, as Kubernetes Jobs (:mod:`swerl_core.execution.cluster`). Raises
    :class:`EvaluateError` when instances are executable but this machine cannot run the sandbox (install
    bubblewrap, or set ``evaluate.execute: false``); :func:`require_sandbox` says so before generating.
    """
    if execution_digest(settings, instances) is None:
        return list(results)
    executable = {i.instance_id: i for i in instances if i.execution is not None}
    verdicts: dict[int, Verdict] = {}  # index in results → (reason, detail)
    runs: dict[tuple[str, str], list[int]] = {}  # (instance, patch) → the samples it judges: equal answers run once
    for index, result in enumerate(results):
        instance = executable.get(result.instance_id)
        if instance is None:
            continue
        without_running = _without_running(settings, instance, result)
        if without_running is not None:
            verdicts[index] = without_running
        else:
            runs.setdefault((instance.instance_id, result.model_patch), []).append(index)
    # Each environment is built (or found) once, before any run: a build that fails is tried once, not once per
    # worker waiting on its lock, and its repository's answers are all not_run for the same reason.
    failed_repos = _environments(settings, {executable[key[0]].repo for key in runs}, say)

    keys = [key for key in runs if executable[key[0]].repo not in failed_repos]
    for key in runs:
        if executable[key[0]].repo in failed_repos:
            for index in runs[key]:
                verdicts[index] = NOT_RUN, failed_repos[executable[key[0]].repo]
    total, done = len(keys), 0
    say(f"resolved: 0/{total} distinct answers run against their tests", 0, total)

    def tick() -> None:
        nonlocal done
        done += 1
        say(f"resolved: {done}/{total} distinct answers run against their tests", done, total)

    candidates = [(_executable(executable[key[0]]), key[1]) for key in keys]
    if settings.execution.backend == "kubernetes":
        judged = _on_cluster(settings, candidates, tick)
    else:
        judged = _here(settings, candidates, tick)
    for key, verdict in zip(keys, judged, strict=True):
        for index in runs[key]:
            verdicts[index] = verdict
    return [
        replace(result, resolution=verdicts[i][0], resolution_detail=verdicts[i][1]) if i in verdicts else result
        for i, result in enumerate(results)
    ]


def _here(
    settings: Settings, candidates: Sequence[tuple[ExecutableInstance, str]], tick: Callable[[], None]
) -> list[Verdict]:
    """Each candidate's verdict from this machine's sandbox, ``execution.workers`` runs at a time."""

    def run(instance: ExecutableInstance, patch: str, work: Path) -> Verdict:
        try:
            verdict = resolve(settings, instance, _mirror(settings, instance.repo), patch, work)
        except SandboxUnavailable as exc:
            raise _no_sandbox(f"cannot run the tests of {instance.instance_id}: ", exc) from None
        except (ExecutionError, GitError, OSError, subprocess.SubprocessError) as exc:  # this machine's failure
            return NOT_RUN, f"{type(exc).__name__}: {first_line(exc)}"
        return verdict.reason, verdict.detail

    verdicts: dict[int, Verdict] = {}
    with tempfile.TemporaryDirectory(prefix="swerl-resolve-") as work:
        pool = SandboxPool(_workers(settings))
        try:
            futures = {pool.submit(run, *candidate, Path(work) / str(n)): n for n, candidate in enumerate(candidates)}
            for future in as_completed(futures):
                verdicts[futures[future]] = future.result()
                tick()
        except BaseException:  # interrupted: the running sandboxes are killed, nothing of them recorded
            pool.stop()
            raise
        finally:  # the runs not started yet never start
            pool.shutdown()
    return [verdicts[n] for n in range(len(candidates))]


def _on_cluster(
    settings: Settings, candidates: Sequence[tuple[ExecutableInstance, str]], tick: Callable[[], None]
) -> list[Verdict]:
    """Each candidate's verdict from Kubernetes test-run Jobs; one without (the cluster failed) is ``not_run``."""
    return resolve_on_cluster(settings.execution, settings.home, candidates, tick)


def _executable(instance: EvalInstance) -> ExecutableInstance:
    assert instance.execution is not None
    return instance.execution


def _environments(settings: Settings, repos: set[str], say: ProgressReporter) -> dict[str, str]:
    """Build (or find) the environment of each of ``repos``; those that do not build → why."""
    failed: dict[str, str] = {}
    for repo in sorted(repos):
        try:
            ensure_environment(settings, repo, say)
        except SandboxUnavailable as exc:
            raise _no_sandbox(f"cannot build the environment of {repo}: ", exc) from None
        except ExecutionError as exc:
            failed[repo] = str(exc).splitlines()[0]
    return failed


def _without_running(settings: Settings, instance: EvalInstance, result: SampleResult) -> tuple[str, str] | None:
    """The verdict of a sample that needs no test run (no edits; nothing to run it with), else None."""
    if result.error is not None or not result.model_patch:
        return "did_not_apply", result.error or "the answer changes no file of the context"
    if settings.execution.environment_for(instance.repo) is None:
        return NOT_RUN, f"{instance.repo} declares no execution environment here (execution.environments)"
    mirror = _mirror(settings, instance.repo)
    if not (mirror / "HEAD").exists():
        return NOT_RUN, f"no git mirror of {instance.repo} at {mirror}"
    return None


def _no_sandbox(context: str, exc: SandboxUnavailable) -> EvaluateError:
    """The one-line error of a machine that cannot run the sandbox, naming the switch that evaluates without it."""
    return EvaluateError(f"{context}{exc}; or set evaluate.execute: false to evaluate without running tests")


def _mirror(settings: Settings, repo: str) -> Path:
    return mirror_path(settings.mirrors_dir, repo)


def _workers(settings: Settings) -> int:
    return settings.execution.workers or os.cpu_count() or 1


def execution_summary(results: Sequence[SampleResult], seconds: float = 0.0, seed: int = 0) -> ExecutionSummary | None:
    """The :class:`ExecutionSummary` of judged ``results``; None when no sample was meant to run."""
    meant = [r for r in results if r.resolution is not None]
    if not meant:
        return None
    judged = [r for r in meant if r.resolution != NOT_RUN]
    by_instance = per_instance([(r.instance_id, r.sample, resolved_value(r.resolution)) for r in judged])
    rate = lower = upper = None
    if by_instance:
        means = np.array([np.mean(flags) for flags in by_instance.values()], dtype=float)
        rate = float(means.mean())
        lower, upper = bootstrap_interval(means, (1 - INTERVAL) / 2, np.random.default_rng(seed), 4000)
    not_run = [r.resolution_detail for r in meant if r.resolution == NOT_RUN]
    note = f"{len(not_run)} samples not run: {Counter(not_run).most_common(1)[0][0]}" if not_run else ""
    return ExecutionSummary(
        executable_instances=len({r.instance_id for r in meant}),
        judged_samples=len(judged),
        resolved_rate=rate,
        lower=lower,
        upper=upper,
        reasons=dict(sorted(Counter(str(r.resolution) for r in meant).items())),
        calibration=calibration([r.reward for r in judged], [r.resolution == "resolved" for r in judged]),
        note=note,
        seconds=seconds,
    )


def execution_columns(execution: ExecutionSummary | None) -> dict[str, str | float | int]:
    """An evaluation's test runs as the columns of a table (the Prefect evaluation artifact, ``swerl evaluate``):
    resolved rate, its interval, the reward's ROC AUC and rank correlation, executable instances; dashes when
    nothing ran or a measure is undefined."""
    if execution is None:
        return dict.fromkeys(COLUMNS, "-")
    cal = execution.calibration

    def shown(value: float | None) -> str | float:
        return "-" if value is None else round(value, 4)

    interval = "-" if execution.lower is None else f"[{execution.lower:.3f}, {execution.upper:.3f}]"
    values = (shown(execution.resolved_rate), interval, shown(cal.roc_auc), shown(cal.spearman),
              execution.executable_instances)  # fmt: skip
    return dict(zip(COLUMNS, values, strict=True))
