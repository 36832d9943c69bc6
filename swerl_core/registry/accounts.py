"""Who may do what on the production stack's MLflow: the service account, release managers and readers.

Three roles, each a permission on the registered model (``registry.model_name``) in MLflow's basic-auth app; every
signed-in user reads everything else (the app's ``default_permission = READ``, ``infra/mlflow/basic_auth.ini``):

- ``service`` — the workers (``SWERL_SERVICE_ACCOUNT``, default ``swerl``): MANAGE, because registering clears
  ``challenger`` and may delete a duplicate version; :mod:`.door` still lets it move aliases only to versions that
  passed the gate, and only it writes the gate's tags;
- ``release-manager`` — MANAGE: promote, roll back, force a promotion with a reason;
- ``reader`` — READ.

:func:`provision` makes the server match an accounts list: creates the model, creates missing users, sets every
listed user's password (so editing the list and running it again rotates passwords) and grants the role. It signs
in as the admin through ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``. Passwords come from the
environment or a file, never from command-line arguments, and are never printed.

``python -m swerl_core.registry.accounts`` does it from the environment: ``SWERL_SERVICE_PASSWORD`` for the service
account and ``SWERL_ACCOUNTS_FILE`` (optional), whose lines read ``ROLE USER PASSWORD`` (``#`` starts a comment).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swerl_core.errors import SwerlError
from swerl_core.registry import RegistryError
from swerl_core.registry.door import service_account

ROLES: Mapping[str, str] = {"service": "MANAGE", "release-manager": "MANAGE", "reader": "READ"}


@dataclass(frozen=True)
class Account:
    """One MLflow user and its role on the registered model (the password never appears in a repr)."""

    name: str
    role: str
    password: str = field(repr=False)


def read_accounts(path: Path) -> list[Account]:
    """The accounts of an accounts file (``ROLE USER PASSWORD`` per line); a malformed line is refused by number."""
    people = [role for role in ROLES if role != "service"]  # the service account is SWERL_SERVICE_PASSWORD's
    accounts = []
    for number, line in enumerate(Path(path).read_text("utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3 or words[0] not in people:
            raise RegistryError(f"{path}:{number}: expected `ROLE USER PASSWORD` with ROLE one of {', '.join(people)}")
        accounts.append(Account(words[1], words[0], words[2]))
    return accounts


def environment_accounts(env: Mapping[str, str]) -> list[Account]:
    """The service account (``SWERL_SERVICE_PASSWORD``) and the accounts of ``SWERL_ACCOUNTS_FILE``, if set."""
    password = env.get("SWERL_SERVICE_PASSWORD", "")
    if not password:
        raise RegistryError("SWERL_SERVICE_PASSWORD is not set: the service account needs a password")
    accounts = [Account(env.get("SWERL_SERVICE_ACCOUNT") or service_account(), "service", password)]
    if env.get("SWERL_ACCOUNTS_FILE"):
        accounts += read_accounts(Path(env["SWERL_ACCOUNTS_FILE"]))
    return accounts


def provision(tracking_uri: str, model: str, accounts: Sequence[Account]) -> list[str]:
    """Make the MLflow server at ``tracking_uri`` hold ``model`` and ``accounts`` with their roles; returns one line
    per account saying what was done (no password)."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    from swerl_core.models import mlflow_client, registry_access

    if service_account() in {a.name for a in accounts if a.role != "service"}:
        raise RegistryError(f"{service_account()} is the service account; it cannot hold another role")
    client = mlflow_client(tracking_uri)
    users = get_app_client("basic-auth", tracking_uri=tracking_uri)
    lines = []
    with registry_access(tracking_uri, model, "the admin's rights"):
        try:
            client.create_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        for account in accounts:
            try:
                users.get_user(account.name)
                users.update_user_password(account.name, account.password)
                done = "password set"
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                users.create_user(account.name, account.password)
                done = "created"
            try:
                users.grant_user_permission(account.name, "registered_model", model, ROLES[account.role])
            except MlflowException as exc:  # a second run (rotating passwords, changing a role) finds a grant
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                users.revoke_user_permission(account.name, "registered_model", model)  # MLflow has no update
                users.grant_user_permission(account.name, "registered_model", model, ROLES[account.role])
            lines.append(f"{account.name}: {done}; {account.role} ({ROLES[account.role]} on {model})")
    return lines


def main(env: Mapping[str, str] | None = None) -> int:
    """Provision the accounts the environment names on ``MLFLOW_TRACKING_URI``; prints one line per account."""
    from swerl_core.config import load_settings

    env = os.environ if env is None else env
    try:
        settings = load_settings(env=dict(env))
        for line in provision(settings.tracking_uri, settings.registry.model_name, environment_accounts(env)):
            print(line)
    except (SwerlError, OSError) as exc:
        print(f"swerl accounts: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
