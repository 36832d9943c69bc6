"""A checkout of one commit with patches applied, ready for the sandbox.

The checkout holds only the history up to its commit (:func:`swerl_core.git.isolated.isolated_checkout`): code run
in it cannot read the fix from the repository. Patches are applied with ``git apply``, which refuses paths that
leave the tree or pass through a symbolic link. Applying is swerl's own step, outside the sandbox; nothing in a
patch is executed here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from swerl_core.diff_paths import diff_sections, section_paths
from swerl_core.execution.errors import PatchDoesNotApply
from swerl_core.git.command import first_error_line, git_argv, git_env
from swerl_core.git.isolated import isolated_checkout


def prepared_checkout(mirror: Path, commit: str, dest: Path, patches: Sequence[tuple[str, str]] = ()) -> Path:
    """A checkout of ``commit`` from ``mirror`` at ``dest`` with each ``(name, patch)`` applied in order (an empty
    patch is skipped); returns ``dest``. Raises :class:`PatchDoesNotApply` naming the first patch that fails."""
    isolated_checkout(mirror, commit, dest)
    for name, patch in patches:
        apply_patch(dest, patch, name)
    return dest


def apply_patch(tree: Path, patch: str, name: str = "patch") -> None:
    """Apply the unified diff ``patch`` to the git work tree ``tree``; :class:`PatchDoesNotApply` says why not."""
    if not patch.strip():
        return
    applied = subprocess.run(
        git_argv(None, ["apply", "--whitespace=nowarn", "-"]),
        input=patch.encode("utf-8", "surrogateescape"),
        cwd=tree,
        capture_output=True,
        env=git_env(),
        check=False,
        timeout=300,
    )
    if applied.returncode != 0:
        raise PatchDoesNotApply(f"the {name} does not apply: {first_error_line(applied.stderr)}")


def patch_paths(patch: str) -> list[str]:
    """The paths a unified diff writes (new side; deletions excluded), in order, each once."""
    paths: list[str] = []
    for section in diff_sections(patch):
        named = section_paths(section)
        deleted = "\n+++ /dev/null" in section or "\ndeleted file mode" in section
        if named is not None and not deleted and named[1] not in paths:
            paths.append(named[1])
    return paths
