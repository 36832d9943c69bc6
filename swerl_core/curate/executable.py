"""Stage 10, validated instances: FAIL_TO_PASS and PASS_TO_PASS of every row whose repository declares an
execution environment (``execution.environments``), derived by :func:`swerl_core.execution.validate_instance`.

It runs last, on the rows every other stage kept, since each validation runs the tests four times. The gold patch
is the row's ``oracle_patch`` (the code part of the pull request) and its tests those of ``test_patch``. Outcomes
are kept per environment digest (:mod:`swerl_core.execution.validation_cache`), so a curate that reruns, after a
crash or with another config, validates only what it has not validated yet. A repository without a declaration is
``no_environment`` and nothing runs for it; ``curate.executable_only`` drops every row that is not ``executable``,
by its status; with ``curate.validate: heldout`` only held-out rows are validated (train rows are
``not_validated``). Pull requests are validated ``execution.workers`` at a time (every core by default), each in its
own checkouts and sandboxes; each repository's first one runs alone, building the environment. Never decides
anything about the other stages' rows.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

import polars as pl

from swerl_core.config import Settings
from swerl_core.curate.errors import CurateError
from swerl_core.curate.funnel import FunnelCounter
from swerl_core.execution import PullRequestCode, SandboxUnavailable, Validation, validate_instance
from swerl_core.execution.environments import declared_repos
from swerl_core.execution.sandbox import SandboxPool
from swerl_core.execution.validation_cache import cache_folder, cached_validation, outcome_key, store_validation
from swerl_core.progress import ProgressReporter

STAGE = "execution"
Validator = Callable[[Settings, PullRequestCode, Path], Validation]


def validate_rows(
    rows: pl.DataFrame,
    settings: Settings,
    mirrors: dict[str, Path],
    funnel: FunnelCounter,
    say: ProgressReporter,
    validate: Validator | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``rows`` with their ``execution`` status, ``fail_to_pass`` and ``pass_to_pass``, and the manifest's
    ``execution`` record. Drops the rows that are not executable when ``curate.executable_only``.

    ``validate`` replaces :func:`validate_instance`. Raises :class:`CurateError` when a repository declares an
    environment but the sandbox cannot run here.
    """
    environments = declared_repos(settings, rows.get_column("repo").to_list()) if rows.height else {}
    ran = bool(environments) or settings.curate.executable_only
    listed = list(rows.iter_rows(named=True))
    outcomes: dict[int, Validation] = {}
    pending: list[tuple[int, PullRequestCode, Path, str]] = []  # (row, pull request, cache folder, key)
    for i, row in enumerate(listed):
        decided = _without_running(row, settings, mirrors.get(row["repo"]))
        if isinstance(decided, Validation):
            outcomes[i] = decided
        else:
            pending.append((i, *decided))
    done = len(listed) - len(pending)
    same: dict[str, list[int]] = {}  # key → its rows: equal pull requests (one cache entry) are validated once
    for i, _, _, key in pending:
        same.setdefault(key, []).append(i)
    pending = [item for item in pending if same[item[3]][0] == item[0]]

    def validated(key: str, outcome: Validation) -> None:
        nonlocal done
        for i in same[key]:
            outcomes[i] = outcome
            done += 1
            say(f"validated {listed[i]['instance_id']}: {outcome.status}", done, len(listed))

    cancelled = threading.Event()
    with tempfile.TemporaryDirectory(prefix="swerl-validate-") as work:
        run = functools.partial(_validate, settings, Path(work), validate or validate_instance, cancelled)
        # Each repository's first pull request runs alone: it builds the environment, and a build that fails is
        # that repository's outcome for the rest, never tried again by each worker.
        firsts = {pull.repo: (i, pull, folder, key) for i, pull, folder, key in reversed(pending)}
        failed_builds: dict[str, Validation] = {}
        for _, pull, folder, key in sorted(firsts.values(), key=lambda item: item[0]):
            validated(key, run(pull, folder, key))
            if outcomes[same[key][0]].status == "install_failed":
                failed_builds[pull.repo] = outcomes[same[key][0]]
        rest = [item for item in pending if item[0] not in outcomes]
        for _, pull, _, key in rest:
            if pull.repo in failed_builds:
                validated(key, failed_builds[pull.repo])
        pool = SandboxPool(settings.execution.workers or os.cpu_count() or 1)
        try:
            futures = {pool.submit(run, pull, folder, key): key for i, pull, folder, key in rest if i not in outcomes}
            for future in as_completed(futures):
                validated(futures[future], future.result())
        except BaseException:  # Ctrl-C, or a sandbox that cannot run: the running validations end now, unkept
            cancelled.set()
            pool.stop()
            raise
        finally:  # what has not started never starts
            pool.shutdown()
    outcomes_in_order = [outcomes[i] for i in range(len(listed))]
    statuses = [outcome.status for outcome in outcomes_in_order]
    rows = rows.with_columns(
        execution=pl.Series(statuses, dtype=pl.String),
        fail_to_pass=pl.Series([list(o.fail_to_pass) for o in outcomes_in_order], dtype=pl.List(pl.String)),
        pass_to_pass=pl.Series([list(o.pass_to_pass) for o in outcomes_in_order], dtype=pl.List(pl.String)),
    )
    counts = Counter(statuses)
    record = {
        "validated": ran,
        "declared_repos": sorted(environments),
        "environments": environments,
        "gold_runs": settings.execution.gold_runs if ran else None,
        "executable_only": settings.curate.executable_only,
        "validate": settings.curate.validate,
        "counts": dict(sorted(counts.items())),
    }
    if ran:
        drop = settings.curate.executable_only
        funnel.record(STAGE, rows.height, {s: n for s, n in counts.items() if drop and s != "executable"})
        if drop:
            rows = rows.filter(pl.col("execution") == "executable")
    return rows, record


def _without_running(
    row: dict[str, Any], settings: Settings, mirror: Path | None
) -> Validation | tuple[PullRequestCode, Path, str]:
    """A row's outcome when nothing needs to run (no environment, a train row under ``validate: heldout``, no
    mirror, validated before); else what validating it takes: the pull request, the cache folder and key."""
    declaration = settings.execution.environment_for(row["repo"])
    if declaration is None:
        return Validation("no_environment", reason=f"{row['repo']} declares no execution environment")
    if settings.curate.validate == "heldout" and not row["heldout"]:
        return Validation("not_validated", reason="a train row, and curate.validate is heldout")
    if mirror is None:
        return Validation("checkout_failed", reason=f"no git mirror of {row['repo']}")
    pull = PullRequestCode(row["repo"], mirror, row["base_commit"], row["oracle_patch"], row["test_patch"])
    folder, key = cache_folder(settings.home, declaration), outcome_key(pull, settings.execution)
    cached = cached_validation(folder, key)
    return cached if cached is not None else (pull, folder, key)


def _validate(
    settings: Settings,
    work: Path,
    validate: Validator,
    cancelled: threading.Event,
    pull: PullRequestCode,
    folder: Path,
    key: str,
) -> Validation:
    """Validate one pull request in its own folder under ``work`` and keep the outcome, unless the validation was
    cancelled meanwhile (its sandbox killed: the outcome says nothing)."""
    try:
        outcome = validate(settings, pull, work / key)
    except SandboxUnavailable as exc:
        raise CurateError(f"cannot validate {pull.repo} at {pull.base_commit[:12]}: {exc}") from exc
    if not cancelled.is_set():
        store_validation(folder, key, outcome)
    return outcome
