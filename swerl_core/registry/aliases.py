"""Aliases ``challenger`` and ``champion``: every move recorded (who, why, when), promote and rollback.

Each move is a registered-model tag ``alias_move.<ns>.<id>`` holding JSON, and the version it lands on
gets ``last_alias_move``; the champion's lineage is the replay of those moves (promote pushes,
rollback pops), so ``rollback`` returns to the previous holder even after several rollbacks. A version
whose gate verdict is not ``pass`` becomes champion only with ``force`` and a reason. These functions
do not lock: callers hold :func:`swerl_core.registry.register.registry_lock` around them.

A move is written in three steps, so that a kill between any two leaves a state :func:`settle_moves` reads
whole: the record as ``intended``, then the alias, then the record as ``done``. Whoever takes the lock next
settles an intended record by the alias itself: pointing where the record says, the move happened (the record
becomes ``done``); anywhere else, it did not (the record is removed). The lineage replays done moves only.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
    state: Literal["intended", "done"] = "done"  # intended: written before the alias moved (see settle_moves)


def alias_moves(client: Any, name: str) -> list[AliasMove]:
    """Every alias move of model ``name`` that happened, oldest first (intended ones not yet settled left out)."""
    return [move for _, move in _recorded_moves(client, name) if move.state == "done"]


def _recorded_moves(client: Any, name: str) -> list[tuple[str, AliasMove]]:
    tags = client.get_registered_model(name).tags
    return [(key, AliasMove(**json.loads(tags[key]))) for key in sorted(k for k in tags if k.startswith(MOVE_PREFIX))]


def settle_moves(client: Any, name: str) -> list[AliasMove]:
    """Settle the moves a killed process left ``intended``: done where the alias points as recorded, removed
    elsewhere; returns those found done. Call it holding the registry lock, before reading or moving aliases."""
    from mlflow.exceptions import MlflowException

    try:
        recorded = _recorded_moves(client, name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []  # no registered model yet: nothing was moved
        raise
    settled = []
    for key, move in recorded:
        if move.state != "intended":
            continue
        if alias_version(client, name, move.alias) == move.version:
            _record(client, name, key, replace(move, state="done"))
            settled.append(move)
        else:
            client.delete_registered_model_tag(name, key)
    return settled


def _record(client: Any, name: str, key: str, move: AliasMove) -> None:
    payload = json.dumps(asdict(move))
    client.set_registered_model_tag(name, key, payload)
    if move.state == "done" and move.version is not None:
        client.set_model_version_tag(name, move.version, "last_alias_move", payload)


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
    """Point ``alias`` at ``version`` (or remove it), recorded as tags: intended, moved, done."""
    previous = alias_version(client, name, alias)
    move = AliasMove(alias, version, previous, kind, who, why, datetime.now(UTC).isoformat(), forced, "intended")
    key = f"{MOVE_PREFIX}{time.time_ns():020d}.{uuid.uuid4().hex[:8]}"
    _record(client, name, key, move)
    if version is None:
        if previous is not None:
            client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
    done = replace(move, state="done")
    _record(client, name, key, done)
    return done


def gate_verdict(client: Any, name: str, version: str) -> str:
    """The ``gate.verdict`` tag of a version: ``pass``, ``fail`` or ``pending`` (never judged)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_model_version(name, version).tags
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # an unreachable or broken registry is not a missing version
        raise RegistryError(f"model {name} has no version {version}") from None
    return tags.get("gate.verdict", "pending")


def promote(client: Any, name: str, version: str, who: str, why: str, force: bool = False) -> AliasMove:
    """Make ``version`` the champion; refused unless it passed the gate or ``force`` comes with a reason."""
    settle_moves(client, name)
    verdict = gate_verdict(client, name, version)
    if verdict != "pass":
        if not force:
            raise RegistryError(
                f"{name} v{version} did not pass the gate (verdict {verdict}); "
                "only a forced promotion with a reason overrides it"
            )
        if not why.strip():
            raise RegistryError(
                "a forced promotion needs a reason saying why a version that failed the gate is promoted"
            )
    if alias_version(client, name, CHAMPION) == version:
        raise RegistryError(f"{name} v{version} is already the champion")
    move = move_alias(client, name, CHAMPION, version, "promote", who, why or "promoted", forced=verdict != "pass")
    if alias_version(client, name, CHALLENGER) == version:
        move_alias(client, name, CHALLENGER, None, "clear", who, f"v{version} became champion")
    return move


def rollback(client: Any, name: str, who: str, why: str) -> AliasMove:
    """Move ``champion`` back to the holder before the current one."""
    settle_moves(client, name)
    lineage = champion_lineage(alias_moves(client, name))
    current = alias_version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back")
    if len(lineage) < 2 or lineage[-1] != current:
        raise RegistryError(f"{name} has no previous champion before v{current}")
    return move_alias(client, name, CHAMPION, lineage[-2], "rollback", who, why or "rollback")
