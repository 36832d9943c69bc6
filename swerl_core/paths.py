"""Relative paths from outside: whether one is safe to use under a root, and where it lands there.

A snapshot's file names, a model's edit, a bucket's file index and a training pod's report all name files
relative to some root, and all of them are untrusted text. :func:`is_safe_relative` is the one rule for
such a path; :func:`path_under` also checks the disk, so that a path that is fine as text cannot leave its
root through a symbolic link; :func:`is_work_tree_path` adds the rule for a file of a repository's work tree
(curation keeps such paths only, and an edit writes only to one). Each caller adds only its own policy on top
(the bucket index does not name itself) and keeps its own error type and message. This module
never reads or writes a file: it only looks at the names on the way down (``lstat``).

The rules, and why:

- a non-empty ``str`` in POSIX form: ``/`` separates components, as in git, URLs and the bucket's keys;
- not absolute: no leading ``/``, and no Windows drive or share (``C:x``, ``C:/x``), which a Windows tool
  would read as absolute or drive-relative;
- no backslash anywhere: on POSIX it is an ordinary character, but the same name means a separator to a
  Windows tool (``..\\x`` escapes there); git repositories practically never use it in names;
- no ``..`` component, which climbs out of the root;
- no ``.`` and no empty components (``./a``, ``a//b``, ``a/``): one spelling per file. Callers use these
  paths as keys (an answer's edits, a file index, a snapshot's code context), and ``a`` and ``./a`` would be
  two keys for one file;
- no NUL, no other control character and no line or paragraph separator: names travel through
  line-oriented formats (diff headers, ``git fast-import``, logs, JSON lines) where one would be read as
  structure; no lone surrogate either (not text; cannot be encoded to a file name);
- at most :data:`MAX_PATH_BYTES` bytes in UTF-8, and each component at most :data:`MAX_NAME_BYTES`
  (Linux's ``PATH_MAX`` and ``NAME_MAX``): a longer name passes no check here only to fail while writing.

Any other Unicode is allowed and kept as given (no normalization: ``é`` precomposed and decomposed are two
names, as they are to git and to Linux).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PureWindowsPath

MAX_PATH_BYTES = 4096
"""The longest relative path accepted, in UTF-8 bytes (Linux ``PATH_MAX``)."""
MAX_NAME_BYTES = 255
"""The longest component accepted, in UTF-8 bytes (Linux ``NAME_MAX``)."""

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls (NUL included), surrogates, line breaks


def is_safe_relative(path: object) -> bool:
    """Whether ``path`` is a relative path that stays inside whatever root it is joined to (rules: module docstring).

    Symbolic links cannot be judged from the text; :func:`path_under` also checks the disk.
    """
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        return False
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in path):
        return False
    if PureWindowsPath(path).drive or len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return False
    return all(part not in ("", ".", "..") and len(part.encode("utf-8")) <= MAX_NAME_BYTES for part in path.split("/"))


def is_work_tree_path(path: object) -> bool:
    """Whether ``path`` may name a file of a repository's work tree: one a snapshot shows a model, an edit writes.

    A safe relative path (:func:`is_safe_relative`) with no ``.git`` component in any letter case (git refuses
    ``.GIT`` too, for file systems that fold case) and no surrounding whitespace (an answer's parser strips it, so
    an edit could never name such a file).
    """
    if not is_safe_relative(path):
        return False
    assert isinstance(path, str)
    return path == path.strip() and all(part.lower() != ".git" for part in path.split("/"))


def path_under(root: Path, path: str) -> Path | None:
    """``root / path`` when ``path`` is safe (:func:`is_safe_relative`) and stays strictly inside ``root`` on disk.

    ``None`` when the text is unsafe, when any component that exists is a symbolic link (a link inside the
    tree is refused too: a tree from outside may carry links, and a link may change between this check
    and the use), or when the result would resolve to ``root`` itself or outside it.
    """
    if not is_safe_relative(path):
        return None
    target = root
    for part in path.split("/"):
        target = target / part
        if target.is_symlink():
            return None
    resolved_root, resolved = root.resolve(), target.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        return None
    return target
