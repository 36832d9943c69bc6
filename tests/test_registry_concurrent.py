"""Two registrations started at the same moment, in two processes, leave consistent aliases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_world import make_settings

from swerl_core.registry.aliases import CHAMPION, alias_moves, alias_version, champion_lineage
from swerl_core.registry.versions import mlflow_client

SCRIPT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from eval_world import make_settings
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.register import register

home, who, reward, go = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])
settings = make_settings(home, **{{"registry.model_name": "m-race", "registry.policy": "auto"}})
ckpt = home / who / "final"
ckpt.mkdir(parents=True)
(ckpt / "config.json").write_text(json.dumps({{"model_type": "llama"}}))
while not go.exists():
    time.sleep(0.01)
rewards = {{f"inst-{{j}}": (reward,) for j in range(10)}}
metrics = GateMetrics("s1", 1, reward, 0.0, "p1", rewards)
result = register(settings, ckpt, metrics, {{"mean_reward": reward}}, who=who)
print(json.dumps({{"who": who, "version": result.version, "verdict": result.verdict.verdict}}))
"""


@pytest.mark.slow
def test_two_simultaneous_registrations_are_judged_one_after_the_other(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"registry.model_name": "m-race"})
    client = mlflow_client(settings.tracking_uri)
    client.search_experiments()  # create the MLflow schema before the race, as a running server would have
    script = tmp_path / "register_one.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), who, reward, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who, reward in (("weak", "0.3"), ("strong", "0.6"))
    ]
    time.sleep(1.0)
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    versions = {o["who"]: o["version"] for o in outs}
    assert sorted(versions.values()) == ["1", "2"], "each registration must get its own version number"
    # Whoever went first was judged on the floor; the second against the first. Either order ends with
    # the stronger one as champion, and the alias agrees with the logged lineage.
    judged_against = sorted(client.get_model_version("m-race", v).tags["gate.champion_version"] for v in ("1", "2"))
    assert judged_against[1] == "none" and judged_against[0] in ("1", "2"), judged_against
    assert alias_version(client, "m-race", CHAMPION) == versions["strong"]
    assert champion_lineage(alias_moves(client, "m-race"))[-1] == versions["strong"]
