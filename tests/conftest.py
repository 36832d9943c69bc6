"""Shared test setup: offline, telemetry-free, and every stage's data under a temporary SWERL_HOME."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="swerl-prefect-"))


@pytest.fixture
def swerl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SWERL_HOME for one test."""
    home = tmp_path / "swerl-home"
    home.mkdir()
    monkeypatch.setenv("SWERL_HOME", str(home))
    yield home
