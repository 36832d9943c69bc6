"""The MLflow server app ``swerl-auth``: MLflow's basic-auth app plus the promotion gate, enforced by the server.

``mlflow server --app-name swerl-auth`` runs MLflow's own basic-auth app (users, READ / EDIT / MANAGE per registered
model and experiment, its user database) and adds one check after it has signed the caller in and applied those
permissions. The check holds for every user, the admin included:

- ``champion`` and ``challenger`` move only to a version whose ``gate.verdict`` tag says ``pass`` — unless the caller
  holds MANAGE on the model (a release manager; the service account never does this) and has just written the
  alias-move record of that move (``alias_move.*``, :mod:`.aliases`) as ``intended``, forced (or a rollback), with a
  reason and under their own name;
- the gate's tags (``gate.*``) are written and removed by the service account only (``SWERL_SERVICE_ACCOUNT``,
  default ``swerl``), so nobody else can turn a failed version into a passing one;
- every alias-move record carries the name its writer signed in with and the fields of
  :class:`~swerl_core.registry.aliases.AliasMove`; a record is written once and may then only be marked done (or,
  still intended, removed when its move never happened: its alias does not point where it says); marked done
  only once its alias points where it says, so the log replays only moves that happened;
  ``last_alias_move`` copies a record;
- the model itself is renamed or deleted by the admin only (deleting it drops its permissions: anyone could create
  it again and manage it), and nobody else sets MLflow's ``mlflow.prompt.*`` tags on it (a model tagged as a
  prompt is judged by prompt permissions, which would lock everyone else out);
- a move that happened is settled before anything else touches it: while an intended record says where
  ``champion`` / ``challenger`` points now, that alias does not move again and the version it names is not
  deleted — otherwise a forced move could be made, undone and its record removed, leaving no trace;
- a ``rollback`` record stands in for a forced one only when it returns ``champion`` to the holder before the
  current one (the replay of the done records, :func:`~swerl_core.registry.aliases.champion_lineage`).

A refusal is HTTP 403 with MLflow's JSON error body, whose message begins ``not allowed:``. Readers are refused by
MLflow's own permission check before this one runs (they lack EDIT / MANAGE). This module reads MLflow's request
parsing and the basic-auth app's permission lookup, internals of the pinned MLflow (3.17.2); the production-stack
test exercises each rule against a real server. It never moves aliases or writes tags itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from swerl_core.models import CHALLENGER, CHAMPION
from swerl_core.registry.aliases import MOVE_PREFIX, AliasMove, champion_lineage

SERVICE_ACCOUNT_ENV = "SWERL_SERVICE_ACCOUNT"
GATE_PREFIX = "gate."
LAST_MOVE_TAG = "last_alias_move"
GUARDED_ALIASES = (CHAMPION, CHALLENGER)
PROMPT_PREFIX = "mlflow.prompt."


def create_app(app: Any = None) -> Any:
    """The ``mlflow.app`` factory: MLflow's basic-auth app with :func:`check_request` after its own checks."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    flask_app = flask_app if app is None else app
    served = basic_auth_app(flask_app)
    flask_app.before_request(check_request)  # runs after basic-auth's hook: the caller is signed in and permitted
    return served


def service_account() -> str:
    """The service account's user name (``SWERL_SERVICE_ACCOUNT``, default ``swerl``)."""
    return os.environ.get(SERVICE_ACCOUNT_ENV) or "swerl"


def check_request() -> Any:
    """Flask before-request hook: ``None`` lets the request through, a 403 response refuses it."""
    from flask import request
    from mlflow.server.auth import is_unprotected_route
    from mlflow.server.handlers import _get_request_message, catch_mlflow_exception

    signed_in = request.authorization
    if is_unprotected_route(request.path) or signed_in is None:
        return None  # nothing to guard, or basic-auth has already answered
    found = _checks().get((request.path, request.method))
    if found is None:
        return None
    message_type, check = found

    def checked() -> Any:
        refusal = check(signed_in.username or "", _get_request_message(message_type()))
        return None if refusal is None else _forbidden(refusal)

    return catch_mlflow_exception(checked)()  # an unknown model or version is MLflow's own 404, not a crash


Check = Callable[[str, Any], "str | None"]  # (signed-in user, the parsed request message) → refusal or None


def _checks() -> dict[tuple[str, str], tuple[type, Check]]:
    """(path, method) → (request message type, check), for every REST and ajax path of the guarded registry calls."""
    global _CHECKS
    if _CHECKS is None:
        from mlflow.protos import model_registry_pb2 as pb
        from mlflow.server.handlers import get_endpoints

        by_message: dict[type, Check] = {
            pb.SetRegisteredModelAlias: _check_alias,
            pb.DeleteRegisteredModelAlias: _check_alias_removal,
            pb.DeleteModelVersion: _check_version_removal,
            pb.SetModelVersionTag: _check_version_tag,
            pb.DeleteModelVersionTag: _check_version_tag_removal,
            pb.CreateModelVersion: _check_new_version,
            pb.SetRegisteredModelTag: _check_model_tag,
            pb.DeleteRegisteredModelTag: _check_move_record_removal,
            pb.CreateRegisteredModel: _check_new_model,
            pb.RenameRegisteredModel: _check_model_kept,
            pb.DeleteRegisteredModel: _check_model_kept,
        }
        _CHECKS = {
            (path, method): (message, by_message[message])
            for path, message, methods in get_endpoints(lambda message: message)
            if isinstance(message, type) and message in by_message
            for method in methods
        }
    return _CHECKS


_CHECKS: dict[tuple[str, str], tuple[type, Check]] | None = None


def _store() -> Any:
    from mlflow.server.handlers import _get_model_registry_store

    return _get_model_registry_store()


def _can_manage(model: str) -> bool:
    from mlflow.server.auth import _get_registered_model_permission

    return _is_admin() or bool(_get_registered_model_permission(model).can_manage)


def _check_alias(user: str, msg: Any) -> str | None:
    if msg.alias not in GUARDED_ALIASES:
        return None
    if (unsettled := _unsettled_move(msg.name, msg.alias)) is not None:
        return unsettled
    verdict = _store().get_model_version(msg.name, msg.version).tags.get(GATE_PREFIX + "verdict", "pending")
    if user == service_account():
        if verdict == "pass":
            return None
        return (
            f"not allowed: {user} moves {msg.alias} only to a version that passed the gate "
            f"({msg.name} v{msg.version}: {verdict}); a forced promotion is a release manager's"
        )
    if not _can_manage(msg.name):
        return f"not allowed: {user} lacks MANAGE on {msg.name}"
    if verdict == "pass" or _forced_move_recorded(msg.name, msg.alias, msg.version, user):
        return None
    return (
        f"not allowed: {msg.name} v{msg.version} did not pass the gate ({verdict}); moving {msg.alias} there is a "
        f"forced promotion, recorded first with {user}'s reason (swerl promote {msg.version} --force --reason …)"
    )


def _check_alias_removal(user: str, msg: Any) -> str | None:
    return _unsettled_move(msg.name, msg.alias) if msg.alias in GUARDED_ALIASES else None


def _unsettled_move(model: str, alias: str) -> str | None:
    """A refusal while an intended record says where ``alias`` points now: that move happened and is marked done
    first (what :func:`~swerl_core.registry.aliases.settle_moves` does), so its record can no longer be removed."""
    current = _alias_target(model, alias)
    for key, move in _moves(model):
        if move.state == "intended" and move.alias == alias and move.version == current:
            return f"not allowed: alias-move record {key} of {model} says where {alias} points; mark it done first"
    return None


def _check_version_removal(user: str, msg: Any) -> str | None:
    version = str(msg.version).strip().lstrip("0") or "0"  # as MLflow reads it: "02" is version 2
    for key, move in _moves(msg.name):
        if move.state == "intended" and move.version == version:
            return f"not allowed: {msg.name} v{msg.version} is named by the unsettled alias-move record {key}"
    return None


def _alias_target(model: str, alias: str) -> str | None:
    target = _store().get_registered_model(model).aliases.get(alias)
    return None if target is None else str(target)


def _moves(model: str) -> list[tuple[str, AliasMove]]:
    """The well-formed alias-move records of ``model``, oldest first (keys sort by time)."""
    tags = _store().get_registered_model(model).tags
    found = ((key, _move(tags[key])) for key in sorted(tags) if key.startswith(MOVE_PREFIX))
    return [(key, move) for key, move in found if move is not None]


def _forced_move_recorded(model: str, alias: str, version: str, user: str) -> bool:
    """An intended alias-move record of ``user`` moving ``alias`` to ``version`` with a reason, forced — or a
    rollback of ``champion`` to the holder before the current one."""
    for _, move in _moves(model):
        if (
            move.state == "intended"
            and (move.alias, move.version, move.who) == (alias, str(version), user)
            and (move.forced is True or (move.kind == "rollback" and _rolls_back(model, move)))
            and move.why.strip()
        ):
            return True
    return False


def _rolls_back(model: str, move: AliasMove) -> bool:
    lineage = champion_lineage([done for _, done in _moves(model) if done.state == "done"])
    current = _alias_target(model, CHAMPION)
    return move.alias == CHAMPION and len(lineage) >= 2 and lineage[-1] == current and lineage[-2] == move.version


_MOVE_FIELDS = frozenset(field.name for field in fields(AliasMove))


def _move(value: str | None) -> AliasMove | None:
    """The alias move a record holds; ``None`` for anything else (not JSON, missing or extra fields, bad types)."""
    record = _record(value)
    if record is None or set(record) != _MOVE_FIELDS:
        return None
    text = ("alias", "kind", "who", "why", "when", "state")
    if not all(isinstance(record[name], str) for name in text) or not isinstance(record["forced"], bool):
        return None
    held = ("version", "previous")  # a version number, as MLflow answers it (a string) or as JSON may carry it
    if not all(record[name] is None or type(record[name]) in (str, int) for name in held):
        return None
    return AliasMove(**{**record, **{name: None if record[name] is None else str(record[name]) for name in held}})


def _record(value: str | None) -> dict[str, Any] | None:
    try:
        record = json.loads(value or "")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _gate_tags_refusal(user: str, keys: list[str], model: str) -> str | None:
    gate_keys = sorted(key for key in keys if key.startswith(GATE_PREFIX))
    if gate_keys and user != service_account():
        return f"not allowed: {user} may not write the gate's tags ({', '.join(gate_keys)}) on {model}"
    return None


def _check_version_tag(user: str, msg: Any) -> str | None:
    if msg.key == LAST_MOVE_TAG:
        recorded = _store().get_registered_model(msg.name).tags
        if not any(k.startswith(MOVE_PREFIX) and v == msg.value for k, v in recorded.items()):
            return f"not allowed: {LAST_MOVE_TAG} on {msg.name} v{msg.version} must copy a recorded alias move"
        return None
    return _gate_tags_refusal(user, [msg.key], msg.name)


def _check_version_tag_removal(user: str, msg: Any) -> str | None:
    if msg.key == LAST_MOVE_TAG:
        return f"not allowed: the alias-move records of {msg.name} are kept"
    return _gate_tags_refusal(user, [msg.key], msg.name)


def _check_new_version(user: str, msg: Any) -> str | None:
    keys = [tag.key for tag in msg.tags]
    if LAST_MOVE_TAG in keys:
        return f"not allowed: a new version of {msg.name} has no alias move to copy"
    return _gate_tags_refusal(user, keys, msg.name)


def _check_new_model(user: str, msg: Any) -> str | None:
    if any(tag.key.startswith(MOVE_PREFIX) for tag in msg.tags):
        return f"not allowed: a new model ({msg.name}) starts with no alias-move records"
    return None


def _check_model_kept(user: str, msg: Any) -> str | None:
    # Deleting the model drops its permissions too: any signed-in user could then create it again and manage it.
    if _is_admin():
        return None
    return f"not allowed: renaming or deleting {msg.name} is the admin's (its versions, aliases and records go with it)"


def _check_model_tag(user: str, msg: Any) -> str | None:
    if msg.key.startswith(PROMPT_PREFIX) and not _is_admin():
        # MLflow judges a model tagged as a prompt by its prompt permissions: everyone but the admin locked out.
        return f"not allowed: {user} does not set MLflow's {PROMPT_PREFIX}* tags on {msg.name}"
    return _check_move_record(user, msg) if msg.key.startswith(MOVE_PREFIX) else None


def _is_admin() -> bool:
    from mlflow.server.auth import sender_is_admin

    return bool(sender_is_admin())


def _check_move_record(user: str, msg: Any) -> str | None:
    new = _move(msg.value)
    existing = _store().get_registered_model(msg.name).tags.get(msg.key)
    if existing is None:
        if new is None or new.who != user or new.state != "intended":
            return (
                f"not allowed: a new alias-move record on {msg.name} is an intended move (swerl's alias-move fields) "
                f"signed by its writer ({user})"
            )
        return None
    old = _record(existing)
    if old is None or _record(msg.value) != {**old, "state": "done"}:
        return f"not allowed: alias-move record {msg.key} of {msg.name} may only be marked done"
    if new is not None and _alias_target(msg.name, new.alias) != new.version:
        return f"not allowed: alias-move record {msg.key} of {msg.name} is done only once {new.alias} points there"
    return None


def _check_move_record_removal(user: str, msg: Any) -> str | None:
    if not msg.key.startswith(MOVE_PREFIX):
        return None
    tags = _store().get_registered_model(msg.name).tags
    if msg.key not in tags:
        return None  # MLflow's own answer: no such tag
    move = _move(tags[msg.key])
    if move is None or move.state != "intended":
        return f"not allowed: alias-move record {msg.key} of {msg.name} is done and kept"
    if _alias_target(msg.name, move.alias) == move.version:
        return f"not allowed: alias-move record {msg.key} of {msg.name} says where {move.alias} points; mark it done"
    return None


def _forbidden(message: str) -> Any:
    from flask import make_response

    response = make_response(json.dumps({"error_code": "PERMISSION_DENIED", "message": message}), 403)
    response.headers["Content-Type"] = "application/json"
    return response
