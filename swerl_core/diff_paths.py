"""The file paths a unified diff names in its section headers, read the way git writes them.

git writes a path in double quotes with C-style escapes when it holds a double quote, a backslash or a
control character, and, unless ``core.quotePath`` is off, any byte from 0x80 up (``"a/caf\\303\\251.py"``):
``diff --git "a/x\\ty.py" "b/x\\ty.py"``. :func:`unquoted_path` undoes that quoting, :func:`diff_sections` cuts a
diff into its sections, and :func:`section_paths` reads the old and new path of one ``diff --git`` section, quoted
or not, renames and copies included. All are pure: this module never runs git and never decides whether a path is
safe (:mod:`swerl_core.paths` does).
"""

from __future__ import annotations

from collections.abc import Iterator

_DIFF_GIT = "diff --git "
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_OCTAL = "01234567"
# git writes at most a handful of extended header lines; the hunks after them are never read.
_MAX_HEADER_LINES = 16


def unquoted_path(text: str) -> str:
    """``text`` with git's quoting undone when it is one quoted name; any other text comes back unchanged.

    Octal escapes are bytes of the name's UTF-8; bytes that are not UTF-8 become U+FFFD, as they do where
    swerl decodes git's unquoted output.
    """
    taken = _take_quoted(text)
    return taken[0] if taken is not None and not taken[1] else text


def diff_sections(patch: str) -> list[str]:
    """The ``diff --git`` sections of a unified diff, in order, each starting with its ``diff --git`` line."""
    return [_DIFF_GIT + section for section in ("\n" + patch).split("\n" + _DIFF_GIT)[1:]]


def section_paths(section: str) -> tuple[str, str] | None:
    """The old and new path of one ``diff --git`` section, without git's ``a/`` and ``b/`` prefixes.

    A file added or deleted names the same path on both sides, as git's header does. The ``rename``/``copy``
    lines and the ``---``/``+++`` lines decide where present (they hold one name each, so a space in a name
    is never ambiguous); otherwise the ``diff --git`` line does. None when ``section`` does not start with a
    ``diff --git`` line or names no path that can be read.
    """
    if not section.startswith(_DIFF_GIT):
        return None
    lines = _header_lines(section)
    old, new = _header_names(next(lines)[len(_DIFF_GIT) :])
    for line in lines:
        if line.startswith(("rename from ", "copy from ")):
            old = _line_name(line.split(" ", 2)[2])
        elif line.startswith(("rename to ", "copy to ")):
            new = _line_name(line.split(" ", 2)[2])
        elif line.startswith("--- "):
            old = _file_line_name(line[4:], "a/") or old
        elif line.startswith("+++ "):
            new = _file_line_name(line[4:], "b/") or new
            break  # the hunks start here
        elif line.startswith(("@@", "Binary files ", "GIT binary patch")):
            break
    old, new = old or new, new or old
    return (old, new) if old is not None and new is not None else None


def _header_lines(section: str) -> Iterator[str]:
    """The first lines of ``section`` without their line ends, cut one at a time (a section may be megabytes)."""
    start = 0
    for _ in range(_MAX_HEADER_LINES):
        end = section.find("\n", start)
        yield (section[start:] if end < 0 else section[start:end]).rstrip("\r")
        if end < 0:
            return
        start = end + 1


def _header_names(rest: str) -> tuple[str | None, str | None]:
    """The two names of a ``diff --git`` line after its keyword (prefixes removed); None for one not readable."""
    if rest.startswith('"'):
        first = _take_quoted(rest)
        if first is None or not first[1].startswith(" "):
            return None, None
        old, second = first[0], first[1][1:]
    elif rest.endswith('"'):
        # An unquoted name never holds a double quote (git would have quoted it), so the second name starts at one.
        cut = rest.find(' "')
        if cut < 0:
            return None, None
        old, second = rest[:cut], rest[cut + 1 :]
    else:
        # Two unquoted names can be told apart only when they are the same path ("a/P b/P"), git's own rule.
        half = (len(rest) - 1) // 2
        left, right = rest[:half], rest[half + 1 :]
        same = left.startswith("a/") and right.startswith("b/") and left[2:] == right[2:]
        return (left[2:], right[2:]) if len(rest) % 2 and rest[half] == " " and same else (None, None)
    new = _line_name(second)
    return _without(old, "a/"), None if new is None else _without(new, "b/")


def _line_name(text: str) -> str | None:
    """The name on a ``rename``/``copy`` line: quoted, or the rest of the line."""
    if not text.startswith('"'):
        return text or None
    taken = _take_quoted(text)
    return None if taken is None else taken[0]


def _file_line_name(text: str, prefix: str) -> str | None:
    """The name on a ``---``/``+++`` line without ``prefix``; None for ``/dev/null``.

    git ends an unquoted name that holds a space with a tab (GNU diff puts a date after one); an unquoted name
    never holds a tab, so the name ends at the first one.
    """
    name = _line_name(text) if text.startswith('"') else text.split("\t", 1)[0]
    if name is None or name == "/dev/null":
        return None
    return _without(name, prefix)


def _without(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def _take_quoted(text: str) -> tuple[str, str] | None:
    """The name quoted at the start of ``text`` and the text after its closing quote; None when not quoted."""
    if not text.startswith('"'):
        return None
    out = bytearray()
    i = 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return out.decode("utf-8", "replace"), text[i + 1 :]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif len(digits := text[i + 1 : i + 4]) == 3 and all(d in _OCTAL for d in digits) and int(digits, 8) < 256:
            out.append(int(digits, 8))
            i += 4
        else:
            return None  # not git's quoting: an escape git never writes
    return None  # no closing quote
