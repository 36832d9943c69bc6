"""SEARCH/REPLACE edits: the answer format of SWE-RL (paper §2.1) — parse, apply, render, derive.

An edit is a fenced block::

    ```python
    ### path/to/file.py
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE
    ```

This module owns the format and nothing else: it never scores (see :mod:`swerl_core.reward`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from swerl_core.errors import FormatError

# Fence with any info string, a "### path" line, then the two halves. Lazy halves so that several
# blocks in one answer stay separate; the path is the rest of its line, taken verbatim.
_EDIT_BLOCK = re.compile(
    r"```.*?\n### (?P<path>.*)\n<<<<<<< SEARCH\n(?P<search>[\s\S]*?)\n=======\n"
    r"(?P<replace>[\s\S]*?)\n>>>>>>> REPLACE\n```"
)


@dataclass(frozen=True)
class Edit:
    """One SEARCH/REPLACE edit of one file."""

    path: str
    search: str
    replace: str


def parse_edits(answer: str) -> dict[str, list[Edit]]:
    """Edits in ``answer`` grouped by path, in order of first appearance; empty if there are none."""
    edits: dict[str, list[Edit]] = {}
    for match in _EDIT_BLOCK.finditer(answer):
        edit = Edit(match["path"], match["search"], match["replace"])
        edits.setdefault(edit.path, []).append(edit)
    return edits


def apply_edits(code_context: Mapping[str, str], edits: Mapping[str, Iterable[Edit]]) -> dict[str, str]:
    """New content of every edited file after applying its edits in order.

    A search block must start at a line start: the file is matched as ``"\\n" + content`` against
    ``"\\n" + search``, and every occurrence is replaced. A path missing from ``code_context`` starts
    empty (the edit creates it). Raises :class:`FormatError` for a no-op edit or a search block that
    is not in the file.
    """
    new_content: dict[str, str] = {}
    for path, file_edits in edits.items():
        content = "\n" + code_context.get(path, "")
        for edit in file_edits:
            if edit.search == edit.replace:
                raise FormatError(f"search and replace blocks are identical in {path}")
            needle = "\n" + edit.search
            if needle not in content:
                raise FormatError(f"search block not found in {path}")
            content = content.replace(needle, "\n" + edit.replace)
        new_content[path] = content[1:]
    return new_content


def render_edits(edits: Iterable[Edit], language: str = "python") -> str:
    """The edits as fenced SEARCH/REPLACE blocks separated by blank lines (inverse of :func:`parse_edits`)."""
    return "\n\n".join(
        f"```{language}\n### {e.path}\n<<<<<<< SEARCH\n{e.search}\n=======\n{e.replace}\n>>>>>>> REPLACE\n```"
        for e in edits
    )


def derive_edits(path: str, old: str, new: str, context_lines: int = 1) -> list[Edit]:
    """Minimal edits that turn ``old`` into exactly ``new`` when applied in order by :func:`apply_edits`.

    Used to build oracle answers (SFT warm start, tests). Each hunk takes ``context_lines`` around
    it and grows until its search block occurs exactly once in the partly edited file; where a hunk
    can never be unique (e.g. a file of repeated lines) the whole file becomes one edit. Raises
    :class:`FormatError` when the edits cannot be written in the format at all (a line of a block
    is itself a block marker such as ``=======``, so the answer would parse differently).
    """
    edits = _derive(path, old, new, context_lines)
    if edits and parse_edits(render_edits(edits)) != {path: edits}:
        raise FormatError(f"the change to {path} cannot be written as SEARCH/REPLACE blocks (a line is a marker)")
    return edits


def _derive(path: str, old: str, new: str, context_lines: int) -> list[Edit]:
    if old == new:
        return []
    old_lines = old.split("\n")
    new_lines = new.split("\n")
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    current = list(old_lines)
    shift = 0  # line offset of `current` relative to `old_lines` after the edits made so far
    edits: list[Edit] = []
    for group in matcher.get_grouped_opcodes(0):
        i1, i2 = group[0][1] + shift, group[-1][2] + shift
        j1, j2 = group[0][3], group[-1][4]
        edit = _unique_edit(path, current, i1, i2, new_lines[j1:j2], context_lines)
        if edit is None:
            return [Edit(path, old, new)]
        edits.append(edit)
        current[i1:i2] = new_lines[j1:j2]
        shift += (j2 - j1) - (i2 - i1)
    return edits


def _unique_edit(
    path: str, lines: list[str], start: int, stop: int, replacement: list[str], context: int
) -> Edit | None:
    text = "\n" + "\n".join(lines)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    while True:
        lo, hi = max(0, start - context), min(len(lines), stop + context)
        search = "\n".join(lines[lo:hi])
        replace = "\n".join(lines[lo:start] + replacement + lines[stop:hi])
        needle = "\n" + search
        # Unique at any offset, overlapping ones included: apply_edits replaces every occurrence.
        # "".join of zero lines and of one empty line look alike, so a side with zero lines would
        # lose or gain a line separator: widen until both sides hold at least one line.
        n_replace = (start - lo) + len(replacement) + (hi - stop)
        first = text.find(needle) if hi > lo and n_replace > 0 else -1
        if first == offsets[lo] and text.find(needle, first + 1) == -1 and search != replace:
            return Edit(path, search, replace)
        if lo == 0 and hi == len(lines):
            return None
        context += 1
