"""Applying predicted edits to a checkout, safely: always in a temporary copy, never outside the tree.

Model output names the files it edits, so a path is untrusted input. A path that breaks the shared rule
for relative paths (:mod:`swerl_core.paths`: absolute, ``..``, ``./`` or ``//`` spellings, backslashes,
control characters…), enters ``.git``, or passes through a symbolic link is refused and reported (the
caller counts it); everything else is written into a throwaway copy of the base files, and the
result comes back as a unified diff in ``git apply`` form (the ``model_patch`` of SWE-bench).
Nothing here executes model output, and the original checkout is never written.
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from swerl_core.paths import is_work_tree_path, path_under

_NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True)
class AppliedEdits:
    """What applying one prediction did: the patch of the files written and the paths refused."""

    patch: str
    written: tuple[str, ...]
    refused: tuple[str, ...]


def safe_target(root: Path, path: str) -> Path | None:
    """Where ``path`` lives under ``root``, or ``None`` when an edit may not write it
    (:func:`swerl_core.paths.is_work_tree_path`) or it passes through a symbolic link."""
    return path_under(root, path) if is_work_tree_path(path) else None


def git_patch(path: str, old: str | None, new: str) -> str:
    """A ``git apply``-able diff turning ``old`` (``None``: a new file) into ``new``; ``""`` when equal."""
    if old == new:
        return ""
    source = f"a/{path}" if old is not None else "/dev/null"
    lines = difflib.unified_diff((old or "").splitlines(True), new.splitlines(True), source, f"b/{path}", n=3)
    body = "".join(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE for line in lines)
    header = f"diff --git a/{path} b/{path}\n" + ("new file mode 100644\n" if old is None else "")
    return header + body


def apply_in_copy(base: Path | Mapping[str, str], new_content: Mapping[str, str]) -> AppliedEdits:
    """Write ``new_content`` into a temporary copy of ``base`` (a checkout directory or ``{path: content}``).

    Returns the patch of every file actually changed and the refused paths; the copy is deleted
    before returning and ``base`` is never written. Symbolic links of a checkout are copied as links,
    so an edit through one is seen and refused.
    """
    with tempfile.TemporaryDirectory(prefix="swerl-apply-") as tmp:
        root = Path(tmp) / "tree"
        if isinstance(base, Path):
            shutil.copytree(base, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            root.mkdir()
            for path, content in base.items():
                target = safe_target(root, path)
                if target is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content, encoding="utf-8")
        patches: list[str] = []
        written: list[str] = []
        refused: list[str] = []
        for path in sorted(new_content):
            target = safe_target(root, path)
            if target is None or target.is_dir():
                refused.append(path)
                continue
            old = target.read_text(encoding="utf-8", errors="surrogateescape") if target.exists() else None
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(new_content[path], encoding="utf-8", errors="surrogateescape")
            except OSError:  # a parent is a regular file: the edit cannot land in this tree
                refused.append(path)
                continue
            written.append(path)
            patches.append(git_patch(path, old, new_content[path]))
        return AppliedEdits("".join(patches), tuple(written), tuple(refused))
