"""Stage 10, validated instances: FAIL_TO_PASS and PASS_TO_PASS of every row whose repository declares an
execution environment (``execution.environments``), derived by :func:`swerl_core.execution.validate_instance`.

It runs last, on the rows every other stage kept, since each validation runs the tests four times. The gold patch
is the row's ``oracle_patch`` (the code part of the pull request) and its tests those of ``test_patch``. Outcomes
are kept per environment digest (:mod:`swerl_core.execution.validation_cache`), so a curate that reruns, after a
crash or with another config, validates only what it has not validated yet. A repository without a declaration is
``no_environment`` and nothing runs for it; ``curate.executable_only`` drops every row that is not ``executable``,
by its status; with ``curate.validate: heldout`` only held-out rows are validated (train rows are
``not_validated``). Never decides anything about the other stages' rows.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from swerl_core.config import Settings
from swerl_core.curate.errors import CurateError
from swerl_core.curate.funnel import FunnelCounter
from swerl_core.execution import PullRequestCode, SandboxUnavailable, Validation, validate_instance
from swerl_core.execution.environments import declared_repos
from swerl_core.execution.validation_cache import cache_folder, cached_validation, outcome_key, store_validation
from swerl_core.progress import ProgressReporter
from swerl_core.snapshot_schema import NOT_VALIDATED

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
    outcomes: list[Validation] = []
    failed_builds: dict[str, Validation] = {}
    with tempfile.TemporaryDirectory(prefix="swerl-validate-") as work:
        for i, row in enumerate(rows.iter_rows(named=True)):
            mirror = mirrors.get(row["repo"])
            outcome = _outcome(row, settings, mirror, Path(work), validate or validate_instance, failed_builds)
            outcomes.append(outcome)
            if row["repo"] in environments and outcome.status != NOT_VALIDATED:
                say(f"validated {row['instance_id']}: {outcome.status}", i + 1, rows.height)
    statuses = [outcome.status for outcome in outcomes]
    rows = rows.with_columns(
        execution=pl.Series(statuses, dtype=pl.String),
        fail_to_pass=pl.Series([list(o.fail_to_pass) for o in outcomes], dtype=pl.List(pl.String)),
        pass_to_pass=pl.Series([list(o.pass_to_pass) for o in outcomes], dtype=pl.List(pl.String)),
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


def _outcome(
    row: dict[str, Any],
    settings: Settings,
    mirror: Path | None,
    work: Path,
    validate: Validator,
    failed_builds: dict[str, Validation],
) -> Validation:
    """One row's validation: from the cache when it was done before, else run (and kept)."""
    declaration = settings.execution.environment_for(row["repo"])
    if declaration is None:
        return Validation("no_environment", reason=f"{row['repo']} declares no execution environment")
    if settings.curate.validate == "heldout" and not row["heldout"]:
        return Validation("not_validated", reason="a train row, and curate.validate is heldout")
    if row["repo"] in failed_builds:  # one failed build per repository and curate is enough
        return failed_builds[row["repo"]]
    if mirror is None:
        return Validation("checkout_failed", reason=f"no git mirror of {row['repo']}")
    pull = PullRequestCode(row["repo"], mirror, row["base_commit"], row["oracle_patch"], row["test_patch"])
    folder, key = cache_folder(settings.home, declaration), outcome_key(pull, settings.execution)
    cached = cached_validation(folder, key)
    if cached is not None:
        return cached
    try:
        outcome = validate(settings, pull, work / key)
    except SandboxUnavailable as exc:
        raise CurateError(f"cannot validate {row['instance_id']}: {exc}") from exc
    if outcome.status == "install_failed":
        failed_builds[row["repo"]] = outcome
    store_validation(folder, key, outcome)
    return outcome
