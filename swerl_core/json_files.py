"""JSON records written whole: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, document: Any, *, indent: int | None = None, sort_keys: bool = False) -> None:
    """Write ``document`` to ``path`` as JSON through a staging file in the same folder, renamed over ``path``
    (a rename within one file system is atomic; the process id keeps two writers' staging files apart)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(document, indent=indent, sort_keys=sort_keys) + "\n", encoding="utf-8")
    staging.replace(path)
