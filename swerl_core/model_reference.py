"""One rule for naming a model, whichever verb or flow takes it (train's base model, evaluate, register).

A model is named by

- a registry URI, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, kept as written;
- a checkpoint on shared storage, ``s3://BUCKET/…/checkpoints/<run>/final``, kept as written;
- a directory: absolute, or relative to the working directory, or relative to ``SWERL_HOME`` — the first that
  exists wins, so ``data/checkpoints/<run>/final`` (from the repository root) and ``checkpoints/<run>/final``
  (relative to the home) both work;
- for a base model only, a Hugging Face hub id (``meta-llama/Llama-3.1-8B-Instruct``) when no such directory exists.

This module only turns text into a reference; it never loads or downloads anything.
"""

from __future__ import annotations

from pathlib import Path

from swerl_core.config.storage import is_storage_uri, parse_location
from swerl_core.errors import ModelError, StorageError
from swerl_core.models import parse_model_uri


def resolve_model_reference(text: str, home: Path, *, hub_id_allowed: bool = False) -> str:
    """The model ``text`` names: a ``models:/`` or ``s3://`` URI as written, else an absolute directory path
    (or a hub id)."""
    text = text.strip()
    if is_storage_uri(text):
        try:
            parse_location(text)
        except StorageError as exc:
            raise ModelError(str(exc)) from None
        return text
    if text.startswith("models:/"):
        if parse_model_uri(text) is None:
            raise ModelError(f"bad model URI {text!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        return text
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, Path(home) / path]
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    if hub_id_allowed and not path.is_absolute():
        return text
    looked = " or ".join(str(c) for c in candidates)
    raise ModelError(f"no model directory {text!r} (looked for {looked})")
