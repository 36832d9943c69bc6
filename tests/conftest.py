"""Shared test setup: offline, telemetry-free, and every stage's data under a temporary SWERL_HOME."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from swerl_core.config import Settings, load_settings
from swerl_core.demo.world import SampleWorld, build_world

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(_OFFLINE_ENV)
# Tests talk only to servers they start on 127.0.0.1: a proxy from the environment must not intercept.
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
if "PREFECT_HOME" not in os.environ:  # the xdist workers inherit it; the process that made it removes it at exit
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="swerl-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
# Under pytest-xdist the workers already share the cores. Torch's default of one OpenMP thread per core in every
# worker (and in every process a test starts) oversubscribes them: each small op of a tiny model then waits for a
# descheduled thread, which made the training tests 2-7 times slower on 2 cores. Set before torch is imported.
# The xdist controller imports this file too, before it knows how many workers it starts, and the workers inherit
# its environment: a value this file set (marked) is recomputed in each worker; one the user set is kept.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if "OMP_NUM_THREADS" not in os.environ or os.environ.get("SWERL_TEST_THREADS_DEFAULTED") == "1":
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))
    os.environ["SWERL_TEST_THREADS_DEFAULTED"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest modules first (``pytest.mark.heavy(seconds)``), the rest in collection order.

    ``make test`` hands whole files to the workers in this order (``--no-loadscope-reorder``): a long sequential
    chain that started last would end the suite alone on one core while the other idles.
    """

    def weight(item: pytest.Item) -> float:
        marker = item.get_closest_marker("heavy")
        return -float(marker.args[0]) if marker else 0.0

    items.sort(key=weight)  # stable: a module's tests keep their order


@pytest.fixture
def swerl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SWERL_HOME for one test."""
    home = tmp_path / "swerl-home"
    home.mkdir()
    monkeypatch.setenv("SWERL_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def sample_world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    """The sample world, built once per session; a test that changes it works on ``copy_to`` of it."""
    return build_world(tmp_path_factory.mktemp("sample-world"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama (64 hidden, 2 layers) built locally, shared by a module's training tests."""
    from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model

    spec = TinyModelSpec(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)
    return init_tiny_model(tmp_path_factory.mktemp("models") / "tiny", spec)


@pytest.fixture
def settings(swerl_home: Path) -> Settings:
    """Settings on a fresh SWERL_HOME that holds the sample training snapshot."""
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    write_sample_snapshot(swerl_home)
    return load_settings(env={"SWERL_HOME": str(swerl_home)})
