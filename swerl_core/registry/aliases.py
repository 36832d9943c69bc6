"""Aliases ``challenger`` and ``champion``: every move recorded (who, why, when), promote and rollback.

Each move is a registered-model tag ``alias_move.<ns>.<id>`` holding JSON, and the version it lands on
gets ``last_alias_move``; the champion's lineage is the replay of those moves (promote pushes,
rollback pops), so ``rollback`` returns to the previous holder even after several rollbacks. A version
whose gate verdict is not ``pass`` becomes champion only with ``force`` and a reason. These functions
do not lock: callers hold :func:`swerl_core.registry.register.registry_lock` around them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from swerl_core.models import CHALLENGER, CHAMPION, alias_version  # noqa: F401  (re-exported for registry callers)
from swerl_core.registry import RegistryError

MOVE_PREFIX = "alias_move."
Kind = Literal["challenger", "promote", "rollback", "clear"]


@dataclass(frozen=True)
class AliasMove:
    """One alias change: which alias, to which version (``None``: removed), from which, by whom, why, when."""

    alias: str
    version: str | None
    previous: str | None
    kind: Kind
    who: str
    why: str
    when: str
    forced: bool = False


def alias_moves(client: Any, name: str) -> list[AliasMove]:
    """Every recorded alias move of model ``name``, oldest first."""
    tags = client.get_registered_model(name).tags
    return [AliasMove(**json.loads(tags[key])) for key in sorted(k for k in tags if k.startswith(MOVE_PREFIX))]


def champion_lineage(moves: Sequence[AliasMove]) -> list[str]:
    """Champion holders in order, after replaying promotes (push) and rollbacks (pop); last = current."""
    lineage: list[str] = []
    for move in moves:
        if move.alias != CHAMPION or move.version is None:
            continue
        if move.kind == "rollback":
            if lineage:
                lineage.pop()
            if not lineage or lineage[-1] != move.version:
                lineage.append(move.version)
        else:
            lineage.append(move.version)
    return lineage


def move_alias(
    client: Any, name: str, alias: str, version: str | None, kind: Kind, who: str, why: str, forced: bool = False
) -> AliasMove:
    """Point ``alias`` at ``version`` (or remove it) and record the move as tags."""
    previous = alias_version(client, name, alias)
    if version is None:
        if previous is not None:
            client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
    move = AliasMove(alias, version, previous, kind, who, why, datetime.now(UTC).isoformat(), forced)
    payload = json.dumps(asdict(move))
    client.set_registered_model_tag(name, f"{MOVE_PREFIX}{time.time_ns():020d}.{uuid.uuid4().hex[:8]}", payload)
    if version is not None:
        client.set_model_version_tag(name, version, "last_alias_move", payload)
    return move


def gate_verdict(client: Any, name: str, version: str) -> str:
    """The ``gate.verdict`` tag of a version: ``pass``, ``fail`` or ``pending`` (never judged)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_model_version(name, version).tags
    except MlflowException:
        raise RegistryError(f"model {name} has no version {version}") from None
    return tags.get("gate.verdict", "pending")


def promote(client: Any, name: str, version: str, who: str, why: str, force: bool = False) -> AliasMove:
    """Make ``version`` the champion; refused unless it passed the gate or ``force`` comes with a reason."""
    verdict = gate_verdict(client, name, version)
    if verdict != "pass":
        if not force:
            raise RegistryError(
                f"{name} v{version} did not pass the gate (verdict {verdict}); use --force with --reason to override"
            )
        if not why.strip():
            raise RegistryError("--force needs a --reason saying why a version that failed the gate is promoted")
    if alias_version(client, name, CHAMPION) == version:
        raise RegistryError(f"{name} v{version} is already the champion")
    move = move_alias(client, name, CHAMPION, version, "promote", who, why or "promoted", forced=verdict != "pass")
    if alias_version(client, name, CHALLENGER) == version:
        move_alias(client, name, CHALLENGER, None, "clear", who, f"v{version} became champion")
    return move


def rollback(client: Any, name: str, who: str, why: str) -> AliasMove:
    """Move ``champion`` back to the holder before the current one."""
    lineage = champion_lineage(alias_moves(client, name))
    current = alias_version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back")
    if len(lineage) < 2 or lineage[-1] != current:
        raise RegistryError(f"{name} has no previous champion before v{current}")
    return move_alias(client, name, CHAMPION, lineage[-2], "rollback", who, why or "rollback")
