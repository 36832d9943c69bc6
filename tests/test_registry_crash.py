"""Registration and promotion survive a kill at every step, and a create the client retried after the server acted.

Each case registers v2 of a model whose champion is v1 (policy ``auto``: challenger, champion, challenger cleared)
through a proxy in front of a real ``mlflow server``. The proxy lets one chosen request reach the server and then
kills the registering process before it hears the answer (or answers 500 so that the client retries it). The
same registration run again must leave the registry exactly as an uninterrupted one leaves it: one v2, the same
tags, aliases and alias-move log, and a rollback that returns to v1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eval_world import make_settings
from mlflow_server import Fault, fault_proxy, mlflow_server, training_checkpoint

from swerl_core.registry import RegistryError
from swerl_core.registry.aliases import CHALLENGER, CHAMPION, alias_moves, alias_version
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import promote_version, register, rollback_champion
from swerl_core.registry.versions import mlflow_client, model_versions

pytestmark = [pytest.mark.slow, pytest.mark.heavy(130)]  # one tracking server; three processes a case

TESTS = Path(__file__).parent

# The registering process: one `register` of a checkpoint, the candidate scoring ``reward`` on 10 instances.
CHILD = """
import sys
from pathlib import Path
from eval_world import make_settings
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import register
home, url, name, checkpoint, reward = sys.argv[1:6]
settings = make_settings(Path(home), **{"mlflow_tracking_uri": url, "registry.model_name": name,
                                      "registry.policy": "auto"})
reward = float(reward)
candidate = GateMetrics("s1", 1, reward, 0.0, "p1", {f"inst-{j}": (reward,) for j in range(10)})
registration = register(settings, Path(checkpoint), candidate, {"mean_reward": reward}, who="ci", git_sha="abc")
print(registration.version, registration.verdict.decision, ",".join(registration.aliases))
"""

# MLflow's REST calls, as the proxy sees them.
Request = Callable[[str, str, bytes], bool]


def _call(path: str, **fields: str) -> Request:
    def match(method: str, url: str, body: bytes) -> bool:
        if not url.split("?")[0].endswith(path):
            return False
        sent = json.loads(body or b"{}")
        return all(sent.get(k) == v for k, v in fields.items())

    return match


def _alias_removed(alias: str) -> Request:
    return lambda method, url, body: (
        method == "DELETE" and "registered-models/alias" in url and alias in url + str(body)
    )


CASES: dict[str, tuple[Request, str]] = {
    "before-the-version-is-created": (_call("registered-models/create"), "kill"),
    "after-the-version-is-created": (_call("model-versions/create"), "kill"),
    "create-answered-500-after-the-server-created-it": (_call("model-versions/create"), "500"),
    "after-the-evidence-tags": (_call("model-versions/set-tag", key="eval.rewards_artifact"), "kill"),
    "after-the-gate-verdict": (_call("model-versions/set-tag", key="gate.verdict"), "kill"),
    "after-it-is-judged": (_call("model-versions/set-tag", key="registration.state", value="judged"), "kill"),
    "after-the-challenger-alias-moves": (_call("registered-models/alias", alias=CHALLENGER), "kill"),
    "after-the-champion-alias-moves": (_call("registered-models/alias", alias=CHAMPION), "kill"),
    "after-the-challenger-alias-is-cleared": (_alias_removed(CHALLENGER), "kill"),
    "after-the-last-move-is-recorded": (
        _call("model-versions/set-tag", key="registration.state", value="done"),
        "kill",
    ),
}

# What differs between two registrations of equal inputs: ids, times, and paths that hold them.
_VOLATILE = {"training_run_id", "registration.key", "last_alias_move", "config_hash"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> str:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def _register(home: Path, url: str, name: str, checkpoint: Path, reward: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", CHILD, str(home), url, name, str(checkpoint), str(reward)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _completed(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out.strip()


def _state(url: str, name: str) -> dict[str, Any]:
    """The registry as a user sees it: versions with their tags, aliases, the alias-move log."""
    client = mlflow_client(url)
    versions = {
        str(mv.version): {k: v for k, v in mv.tags.items() if k not in _VOLATILE} for mv in model_versions(client, name)
    }
    moves = [(m.alias, m.version, m.previous, m.kind, m.who) for m in alias_moves(client, name)]
    intended = [k for k in client.get_registered_model(name).tags if k.startswith("alias_move.")]
    aliases = dict(client.get_registered_model(name).aliases)
    return {"versions": versions, "aliases": aliases, "moves": moves, "records": len(intended)}


def _champion_v1(home: Path, url: str, name: str) -> None:
    """v1, registered in this process (policy auto: the champion)."""
    settings = make_settings(
        home, **{"mlflow_tracking_uri": url, "registry.model_name": name, "registry.policy": "auto"}
    )
    candidate = GateMetrics("s1", 1, 0.2, 0.0, "p1", {f"inst-{j}": (0.2,) for j in range(10)})
    first = register(settings, training_checkpoint(home, url, f"{name}-1"), candidate, {"mean_reward": 0.2}, who="ci")
    assert (first.version, first.aliases) == ("1", (CHAMPION,))


def _v1_then_v2(home: Path, url: str, name: str, fault: Fault | None) -> tuple[str, dict[str, Any]]:
    """Register v1 (champion), then v2 through the proxy with ``fault``, then v2 again without."""
    _champion_v1(home, url, name)
    second = training_checkpoint(home, url, f"{name}-2")
    process: subprocess.Popen[str] | None = None
    if fault is not None:
        fault.pid = lambda: process.pid if process is not None else 0
    with fault_proxy(url, fault) as proxied:
        process = _register(home, proxied, name, second, 0.6)
        process.communicate(timeout=300)
    if fault is not None:
        assert fault.fired.is_set(), "the registration never made the chosen request"
    rerun = _completed(_register(home, url, name, second, 0.6))
    return rerun, _state(url, name)


@pytest.fixture(scope="module")
def uninterrupted(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rerun, state = _v1_then_v2(tmp_path_factory.mktemp("clean"), server, "clean", None)
    assert rerun == "2 pass champion" and state["aliases"] == {CHAMPION: "2"}
    return state


@pytest.mark.parametrize("case", list(CASES))
def test_a_registration_killed_at_any_step_is_finished_by_a_rerun_as_if_never_killed(
    case: str, server: str, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    match, action = CASES[case]
    name = case[:40]
    rerun, state = _v1_then_v2(tmp_path, server, name, Fault(match, action))
    assert rerun == "2 pass champion", rerun
    assert state == uninterrupted, f"{case}: the registry differs from an uninterrupted run's"
    client = mlflow_client(server)
    assert alias_version(client, name, CHALLENGER) is None
    settings = make_settings(tmp_path, **{"mlflow_tracking_uri": server, "registry.model_name": name})
    assert rollback_champion(settings, "ci", "kill test").version == "1", "rollback lost the previous champion"


def test_a_promotion_killed_between_the_alias_and_its_record_leaves_one_state_that_rollback_knows(
    server: str, tmp_path: Path
) -> None:
    name = "promote-killed"
    _champion_v1(tmp_path, server, name)
    manual = make_settings(tmp_path, **{"mlflow_tracking_uri": server, "registry.model_name": name})
    second = training_checkpoint(tmp_path, server, f"{name}-2")
    _completed(_register(tmp_path, server, name, second, 0.6))  # v2: champion already under auto
    rollback_champion(manual, "ci", "back to v1")
    promote = f"""
import sys
from pathlib import Path
from eval_world import make_settings
from swerl_core.registry.register import promote_version
settings = make_settings(Path({str(tmp_path)!r}),
                         **{{"mlflow_tracking_uri": sys.argv[1], "registry.model_name": {name!r}}})
promote_version(settings, "2", "ci", "again")
"""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    process: subprocess.Popen[str] | None = None
    fault = Fault(_call("registered-models/alias", alias=CHAMPION), "kill", lambda: process.pid if process else 0)
    with fault_proxy(server, fault) as proxied:
        process = subprocess.Popen([sys.executable, "-c", promote, proxied], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        process.communicate(timeout=300)
    assert fault.fired.is_set()
    client = mlflow_client(server)
    assert alias_version(client, name, CHAMPION) == "2"  # the alias moved; its record says intended
    assert rollback_champion(manual, "ci", "after the kill").version == "1", "the half-recorded move was lost"
    assert [m.kind for m in alias_moves(client, name) if m.alias == CHAMPION][-2:] == ["promote", "rollback"]
    with pytest.raises(RegistryError, match="already the champion"):
        promote_version(manual, "1", "ci", "no-op")
