"""What an evaluation runs on: held-out snapshot rows as :class:`EvalInstance` values, and their prompts.

The held-out split of a snapshot (``docs/data-contracts.md``) holds PRs merged after every training
row, so the model has never seen them. This module only reads; curate writes snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from swerl_core.evaluate import EvaluateError
from swerl_core.prompts import chat_messages
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

    def messages(self) -> list[dict[str, str]]:
        """The SWE-RL chat prompt of this instance."""
        return chat_messages(self.problem_statement, self.code_context)


def heldout_instances(snapshots_dir: Path, snapshot_id: str, limit: int = 0) -> list[EvalInstance]:
    """The held-out rows of snapshot ``snapshot_id`` (the first ``limit`` when > 0); raises ``SnapshotError``."""
    needed = ("instance_id", "repo", "problem_statement", "code_context", "oracle_new_content")
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
        )
        for row in rows
    ]
    return instances[:limit] if limit else instances
