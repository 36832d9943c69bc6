"""What an evaluation runs on: held-out snapshot rows as :class:`EvalInstance` values, and their prompts.

The held-out split of a snapshot (``docs/data-contracts.md``) holds PRs merged after every training
row, so the model has never seen them. This module only reads; curate writes snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.evaluate import EvaluateError
from swerl_core.execution.resolution import ExecutableInstance
from swerl_core.prompts import chat_messages
from swerl_core.snapshot_schema import EXECUTABLE
from swerl_core.snapshots import as_files, read_split


@dataclass(frozen=True)
class EvalInstance:
    """One task: an issue, the code context shown to the model and the oracle's new file contents."""

    instance_id: str
    repo: str
    problem_statement: str
    code_context: Mapping[str, str]
    oracle_new_content: Mapping[str, str]
    base_commit: str = ""
    execution: ExecutableInstance | None = None  # its tests, when validated as executable (or a SWE-bench record's)

    def messages(self) -> list[dict[str, str]]:
        """The SWE-RL chat prompt of this instance."""
        return chat_messages(self.problem_statement, self.code_context)


def heldout_instances(snapshots_dir: Path, snapshot_id: str, limit: int = 0) -> list[EvalInstance]:
    """The held-out rows of snapshot ``snapshot_id`` (the first ``limit`` when > 0); raises ``SnapshotError``."""
    needed = ("instance_id", "repo", "problem_statement", "code_context", "oracle_new_content", "execution")
    rows = read_split(snapshots_dir, snapshot_id, "heldout", needed).to_pylist()
    if not rows:
        raise EvaluateError(f"snapshot {snapshot_id!r} has an empty held-out split")
    instances = [
        EvalInstance(
            instance_id=row["instance_id"],
            repo=row["repo"],
            problem_statement=row["problem_statement"],
            code_context=as_files(row["code_context"]),
            oracle_new_content=as_files(row["oracle_new_content"]),
            base_commit=row.get("base_commit") or "",
            execution=_executable(row),
        )
        for row in rows
    ]
    return instances[:limit] if limit else instances


def _executable(row: dict[str, Any]) -> ExecutableInstance | None:
    """The tests of a row curation validated as ``executable``; None for any other status."""
    if row["execution"] != EXECUTABLE:
        return None
    return ExecutableInstance(
        instance_id=row["instance_id"],
        repo=row["repo"],
        base_commit=row["base_commit"],
        fail_to_pass=tuple(row["fail_to_pass"]),
        pass_to_pass=tuple(row["pass_to_pass"]),
        test_patch=row.get("test_patch") or "",
    )
