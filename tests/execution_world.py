"""Shared by the execution tests: settings whose ``SWERL_HOME`` holds one built environment for ``acme/calc``
(pytest from the package index), made once per test process and reused by every module (a build takes ~8 s)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from swerl_core.config import Settings, load_settings

REPO = "acme/calc"
DECLARATION = f'- {{repo: {REPO}, requirements: ["pytest"]}}'


@functools.cache
def shared_home() -> Path:
    """A ``SWERL_HOME`` for this process, removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="swerl-execution-tests-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def pytest_settings(execution: str = "", home: Path | None = None) -> Settings:
    """Settings declaring :data:`REPO` with pytest, on the shared home unless ``home`` is given; ``execution`` adds
    keys to the ``execution`` section (YAML, one per line)."""
    lines = [f"home: {home or shared_home()}", "execution:"]
    lines += [f"  {line.strip()}" for line in execution.splitlines() if line.strip()]
    lines += ["  environments:", f"    {DECLARATION}"]
    config = Path(tempfile.mkdtemp(prefix="swerl-settings-")) / "settings.yaml"
    config.write_text("\n".join(lines) + "\n")
    try:
        return load_settings(config, env={})
    finally:
        shutil.rmtree(config.parent, ignore_errors=True)
