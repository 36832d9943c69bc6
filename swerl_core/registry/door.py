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
- every alias-move record carries the name its writer signed in with; a record is written once and may then only
  be marked done (or, still intended, removed when its move never happened); ``last_alias_move`` copies a record.

A refusal is HTTP 403 with MLflow's JSON error body, whose message begins ``not allowed:``. Readers are refused by
MLflow's own permission check before this one runs (they lack EDIT / MANAGE). This module reads MLflow's request
parsing and the basic-auth app's permission lookup, internals of the pinned MLflow (3.17.2); the production-stack
test exercises each rule against a real server. It never moves aliases or writes tags itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from swerl_core.models import CHALLENGER, CHAMPION
from swerl_core.registry.aliases import MOVE_PREFIX

SERVICE_ACCOUNT_ENV = "SWERL_SERVICE_ACCOUNT"
GATE_PREFIX = "gate."
LAST_MOVE_TAG = "last_alias_move"
GUARDED_ALIASES = (CHAMPION, CHALLENGER)


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
            pb.SetModelVersionTag: _check_version_tag,
            pb.DeleteModelVersionTag: _check_version_tag_removal,
            pb.CreateModelVersion: _check_new_version,
            pb.SetRegisteredModelTag: _check_move_record,
            pb.DeleteRegisteredModelTag: _check_move_record_removal,
            pb.CreateRegisteredModel: _check_new_model,
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
    from mlflow.server.auth import _get_registered_model_permission, sender_is_admin

    return bool(sender_is_admin() or _get_registered_model_permission(model).can_manage)


def _check_alias(user: str, msg: Any) -> str | None:
    if msg.alias not in GUARDED_ALIASES:
        return None
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


def _forced_move_recorded(model: str, alias: str, version: str, user: str) -> bool:
    """An intended alias-move record of ``user`` moving ``alias`` to ``version``, forced (or a rollback), with a
    reason."""
    for key, value in _store().get_registered_model(model).tags.items():
        record = _record(value) if key.startswith(MOVE_PREFIX) else None
        if (
            record is not None
            and record.get("state") == "intended"
            and (record.get("alias"), str(record.get("version")), record.get("who")) == (alias, str(version), user)
            and (record.get("forced") is True or record.get("kind") == "rollback")
            and str(record.get("why") or "").strip()
        ):
            return True
    return False


def _record(value: str) -> dict[str, Any] | None:
    try:
        record = json.loads(value)
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


def _check_move_record(user: str, msg: Any) -> str | None:
    if not msg.key.startswith(MOVE_PREFIX):
        return None
    new = _record(msg.value)
    existing = _store().get_registered_model(msg.name).tags.get(msg.key)
    if existing is None:
        if new is None or new.get("who") != user or new.get("state") != "intended":
            return f"not allowed: a new alias-move record on {msg.name} is intended and signed by its writer ({user})"
        return None
    old = _record(existing)
    if old is None or new is None or {**old, "state": "done"} != new:
        return f"not allowed: alias-move record {msg.key} of {msg.name} may only be marked done"
    return None


def _check_move_record_removal(user: str, msg: Any) -> str | None:
    if not msg.key.startswith(MOVE_PREFIX):
        return None
    existing = _record(_store().get_registered_model(msg.name).tags.get(msg.key) or "{}") or {}
    if existing.get("state") != "intended":
        return f"not allowed: alias-move record {msg.key} of {msg.name} is done and kept"
    return None


def _forbidden(message: str) -> Any:
    from flask import make_response

    response = make_response(json.dumps({"error_code": "PERMISSION_DENIED", "message": message}), 403)
    response.headers["Content-Type"] = "application/json"
    return response
