"""The files swerl ships beside its code: the Prefect deployments, the swerl-gpu work pool's job template, the
training recipes and the DeepSpeed configs they name.

They live at the repository's own paths (``deployments/prefect.yaml``, ``deployments/configs/*.yaml``,
``infra/k8s/*.json``, ``infra/deepspeed/*.json``); the package reaches them as package data under the same
relative paths (``swerl_core/deployments`` and ``swerl_core/infra`` link to those folders in the source tree, and a
built wheel holds copies), through :mod:`importlib.resources`, so the source tree and an installed wheel answer
alike, from any working directory. This module only finds files; it never reads or changes them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from swerl_core.errors import ConfigError

RECIPES_DIR = Path("deployments") / "configs"
PREFECT_FILE = Path("deployments") / "prefect.yaml"
GPU_JOB_TEMPLATE = Path("infra") / "k8s" / "swerl-gpu-base-job-template.json"


def packaged(relative: Path | str) -> Path:
    """Where the package holds the file at repository-relative path ``relative`` (it may not exist)."""
    return Path(str(files("swerl_core").joinpath(*Path(relative).parts)))


def repository_file(path: Path | str) -> Path:
    """``path`` as written when it exists or is absolute; else the packaged copy of that repository-relative path
    when swerl ships one (``infra/deepspeed/zero3.json`` from any directory); else ``path`` unchanged."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    shipped = packaged(path)
    return shipped if shipped.is_file() else path


def recipe_names() -> list[str]:
    """The names of the recipes swerl ships (``demo-cpu``, ``learnable-cpu``, …), sorted."""
    return sorted(p.stem for p in packaged(RECIPES_DIR).glob("*.yaml"))


def recipe_path(recipe: Path | str) -> Path:
    """The recipe file ``recipe`` names: a bare name (``learnable-cpu``) is a shipped recipe; a path is a file,
    relative to the working directory or, failing that, to the repository (``deployments/configs/x.yaml``).

    Raises :class:`ConfigError` for a bare name that is no shipped recipe (a path is returned as found, for the
    reader to say what is wrong with it).
    """
    text = str(recipe).strip()
    if Path(text).name != text or Path(text).suffix or not text or Path(text).exists():
        return repository_file(text)
    path = packaged(RECIPES_DIR / f"{text}.yaml")
    if not path.is_file():
        shipped = ", ".join(recipe_names())
        raise ConfigError(f"no recipe {text!r}: not a file here, nor one of the shipped recipes ({shipped})")
    return path
