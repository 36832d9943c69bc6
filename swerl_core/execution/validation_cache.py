"""Validation outcomes kept on disk, so that curating again never reruns a pull request's tests.

One JSON file per outcome under ``$SWERL_HOME/validations/<owner>__<name>-<environment digest>/``, named by a
digest of everything the outcome depends on besides the environment (base commit, both patches, the run limits
and the number of gold runs). Each file is written to a temporary name and renamed, so a process killed mid-write
leaves no half outcome and a rerun validates only what has no file yet. ``install_failed`` is never kept: a
failed build may be a passing network problem. Never imports a stage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.execution.validation import PullRequestCode, Validation
from swerl_core.json_files import write_json

_LIMIT_KEYS = ("test_timeout_s", "memory_mb", "output_mb", "disk_mb", "processes", "gold_runs")


def cache_folder(home: Path, declaration: RepoEnvironment) -> Path:
    """The folder holding the outcomes validated with ``declaration``'s environment."""
    owner, name = declaration.repo.lower().split("/")
    return home / "validations" / f"{owner}__{name}-{declaration.digest}"


def outcome_key(pull: PullRequestCode, execution: ExecutionConfig) -> str:
    """The digest naming ``pull``'s outcome: its code and the limits it runs under (not its mirror's path)."""
    payload = {
        "repo": pull.repo.lower(),
        "base_commit": pull.base_commit,
        "gold_patch": pull.gold_patch,
        "test_patch": pull.test_patch,
        "limits": {key: getattr(execution, key) for key in _LIMIT_KEYS},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def cached_validation(folder: Path, key: str) -> Validation | None:
    """The outcome stored under ``key`` in ``folder``; None when there is none (or it cannot be read)."""
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        return Validation(
            status=data["status"],
            fail_to_pass=tuple(data["fail_to_pass"]),
            pass_to_pass=tuple(data["pass_to_pass"]),
            flaky=tuple(data["flaky"]),
            reason=data["reason"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_validation(folder: Path, key: str, validation: Validation) -> None:
    """Keep ``validation`` under ``key`` in ``folder`` (atomically); an ``install_failed`` outcome is not kept."""
    if validation.status == "install_failed":
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / f"{key}.json", asdict(validation), sort_keys=True)
