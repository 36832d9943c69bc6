"""Repository names (``OWNER/NAME``) and clone URLs, checked before anything uses them.

A name comes from the user (``--repo``, ``ingest.repos``), from a GitHub-compatible server
(``full_name``) or from a data file (SWE-bench ``repo``); a clone URL comes from the server. Both
become paths and git remotes, so a hostile server could otherwise make swerl write outside
``SWERL_HOME`` (``x/../../tmp/pwned``) or read any local repository (``file:///…``). This module only
decides; it never touches the file system beyond resolving paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from swerl_core.errors import SwerlError

PUBLIC_GITHUB_API = "https://api.github.com"
"""The public API's base URL; its git host is ``github.com``."""

# GitHub: an owner is alphanumerics and single hyphens (underscores for Enterprise managed users), at
# most 39; a name is alphanumerics, ``.``, ``-`` and ``_``, at most 100, and never only dots.
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,38})")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


class UnsafeNameError(SwerlError):
    """A repository name, clone URL or path that swerl refuses to use (it could leave its root)."""


def is_repository_name(text: object) -> bool:
    """Whether ``text`` is a well-formed ``OWNER/NAME`` (GitHub's characters, no ``..``, no ``__``)."""
    if not isinstance(text, str):
        return False
    owner, slash, name = text.partition("/")
    return (
        bool(slash)
        and _OWNER.fullmatch(owner) is not None
        and "__" not in owner
        and not owner.endswith("_")
        and _NAME.fullmatch(name) is not None
        and name.strip(".") != ""
        and ".." not in name
    )


def repository_name(text: object, source: str = "repository name") -> str:
    """``text`` when it is a well-formed ``OWNER/NAME``; raises :class:`UnsafeNameError` naming ``source``."""
    if not is_repository_name(text):
        shown = repr(text)[:80]
        raise UnsafeNameError(f"{source} {shown} is not a valid OWNER/NAME (letters, digits, '-', '_', '.')")
    return str(text)


def path_under(root: Path, *parts: str) -> Path:
    """``root / parts``; raises :class:`UnsafeNameError` unless it stays under ``root`` once symlinks are resolved."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or base not in path.parents:
        raise UnsafeNameError(f"refusing path {'/'.join(parts)!r}: it leads outside {root}")
    return root.joinpath(*parts)


def git_host(api_url: str) -> tuple[str, str | None]:
    """The scheme and host git remotes must use for ``api_url``: github.com for the public API, else the API's host."""
    if api_url.rstrip("/") == PUBLIC_GITHUB_API:
        return "https", "github.com"
    parts = urlsplit(api_url)
    return parts.scheme, parts.hostname


def is_local_url(url: str) -> bool:
    """Whether a git remote names this machine's file system (``file://`` or a bare path)."""
    scheme = urlsplit(url).scheme
    return scheme == "file" or scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def check_clone_url(url: object, api_url: str, allow_local: bool) -> str:
    """``url`` when git may fetch it for a repository of ``api_url``; raises :class:`UnsafeNameError`.

    Accepted: HTTPS (or the API's own scheme) on the API's git host; a local path or ``file://`` only
    when ``allow_local`` (the sample world and tests).
    """
    if not isinstance(url, str) or not url.strip() or any(ord(c) < 32 for c in url):
        raise UnsafeNameError(f"the server gave an unusable clone URL {str(url)[:80]!r}")
    if is_local_url(url):
        if allow_local:
            return url
        raise UnsafeNameError(
            f"refusing local clone URL {url[:80]!r} from the server: a local world needs "
            "SWERL_GITHUB__LOCAL_CLONES=true (or github.local_clones: true in the settings file)"
        )
    scheme, host = git_host(api_url)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise UnsafeNameError(f"the server gave a malformed clone URL {url[:80]!r}") from None
    if parts.scheme not in {"https", scheme} or parts.hostname is None or parts.hostname != host:
        raise UnsafeNameError(
            f"refusing clone URL {parts.scheme}://{parts.hostname or ''}/…: only {scheme}://{host} is trusted"
        )
    return url
