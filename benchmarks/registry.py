"""REST requests and seconds per registration: swerl's MLflow client against MLflow's own (the baseline).

A local ``mlflow server`` (sqlite) receives ``--versions`` registrations of one model under policy ``auto`` (the
first becomes champion, each later one is judged against it and promoted: every step of a registration runs),
through :func:`swerl_core.registry.register.register`, once with swerl's client
(:func:`swerl_core.models.mlflow_client`, which asks whether the model is a prompt once per name) and once with a
plain :class:`mlflow.MlflowClient` (which asks before each call), each on a model of its own, alternating. Requests
are counted where MLflow's REST client sends them. Both must leave the same tags and aliases on their versions
before the numbers are printed.

    .venv/bin/python benchmarks/registry.py [--versions 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' mlflow server and checkpoint

from mlflow_server import mlflow_server, training_checkpoint  # noqa: E402

VOLATILE = ("training_run_id", "registration.key", "last_alias_move", "config_hash", "eval.", "registration.at")


def counted() -> Callable[[], int]:
    """Count every REST request MLflow's client sends from now on; returns a reader of the count."""
    import mlflow.utils.rest_utils as rest

    sent = [0]
    original = rest.http_request

    def http_request(*args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return original(*args, **kwargs)

    rest.http_request = http_request
    return lambda: sent[0]


def registry_state(url: str, name: str) -> dict[str, Any]:
    """Each version's stable tags and the model's aliases."""
    from swerl_core.registry.versions import mlflow_client, model_versions

    client = mlflow_client(url)
    versions = {
        str(v.version): {k: t for k, t in v.tags.items() if not k.startswith(VOLATILE)}
        for v in model_versions(client, name)
    }
    return {"versions": versions, "aliases": dict(client.get_registered_model(name).aliases)}


def main() -> None:
    """Register the versions both ways; print requests and seconds per registration and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=6, help="registrations per client")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import logging

    from mlflow import MlflowClient

    import swerl_core.registry.register as registering
    from swerl_core.config import load_settings
    from swerl_core.registry.gate import GateMetrics

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    swerl_client = registering.mlflow_client

    def plain_client(uri: str) -> Any:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "mlflow") as url:
        sent = counted()
        results: dict[str, list[tuple[int, float]]] = {"mlflow": [], "swerl": []}
        for i in range(args.versions):
            for label, factory in (("mlflow", plain_client), ("swerl", swerl_client)):
                registering.mlflow_client = factory
                home = Path(tmp) / label
                settings = load_settings(env={}, overrides={"home": home, "mlflow_tracking_uri": url,
                                                            "registry.model_name": f"bench-{label}",
                                                            "registry.policy": "auto"})  # fmt: skip
                reward = 0.1 + 0.1 * i  # each version better than the champion before it
                candidate = GateMetrics("s1", 1, reward, 0.0, "p1", {f"inst-{j}": (reward,) for j in range(10)})
                path = training_checkpoint(home, url, f"{label}-{i}")
                before, started = sent(), time.perf_counter()
                registering.register(settings, path, candidate, {"mean_reward": reward}, who="bench", git_sha="abc")
                results[label].append((sent() - before, time.perf_counter() - started))
        registering.mlflow_client = swerl_client
        if registry_state(url, "bench-mlflow") != registry_state(url, "bench-swerl"):
            raise SystemExit("the two clients left different registries: no numbers")
        print(f"{args.versions} registrations per client, policy auto, local mlflow server (sqlite)")
        for label, rows in results.items():
            print(f"{label:7s} {statistics.mean(r for r, _ in rows):6.1f} requests  "
                  f"{statistics.median(s for _, s in rows):6.2f} s  per registration (median)")  # fmt: skip
        requests = statistics.mean(r for r, _ in results["mlflow"]) / statistics.mean(r for r, _ in results["swerl"])
        seconds = statistics.median(s for _, s in results["mlflow"]) / statistics.median(s for _, s in results["swerl"])
        print(f"ratio (mlflow's client / swerl's): requests {requests:.2f}×, seconds {seconds:.2f}×")


if __name__ == "__main__":
    main()
