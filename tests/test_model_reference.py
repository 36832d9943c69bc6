"""One rule for ``--model`` in train, evaluate and register: a registry URI, or a directory under the cwd or home."""

from __future__ import annotations

from pathlib import Path

import pytest

from swerl_core.errors import ModelError
from swerl_core.models import resolve_model_reference


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    cwd, home = tmp_path / "repo", tmp_path / "repo" / "data"
    (home / "checkpoints" / "run" / "final").mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return cwd, home


def test_a_directory_relative_to_home_or_cwd_names_the_same_checkpoint(layout: tuple[Path, Path]) -> None:
    _, home = layout
    final = str((home / "checkpoints" / "run" / "final").resolve())
    assert resolve_model_reference("checkpoints/run/final", home) == final
    assert resolve_model_reference("data/checkpoints/run/final", home) == final
    assert resolve_model_reference(final, home) == final


def test_registry_uris_are_kept_and_malformed_ones_refused(layout: tuple[Path, Path]) -> None:
    _, home = layout
    assert resolve_model_reference("models:/swerl-policy@champion", home) == "models:/swerl-policy@champion"
    assert resolve_model_reference("models:/swerl-policy/3", home) == "models:/swerl-policy/3"
    with pytest.raises(ModelError, match="bad model URI"):
        resolve_model_reference("models:/swerl-policy", home)


def test_a_missing_directory_is_an_error_unless_a_hub_id_is_allowed(layout: tuple[Path, Path]) -> None:
    _, home = layout
    with pytest.raises(ModelError, match="no model directory 'checkpoints/other'"):
        resolve_model_reference("checkpoints/other", home)
    assert resolve_model_reference("meta-llama/Llama-3.1-8B", home, hub_id_allowed=True) == "meta-llama/Llama-3.1-8B"
    with pytest.raises(ModelError):
        resolve_model_reference(str(home / "absent"), home, hub_id_allowed=True)
