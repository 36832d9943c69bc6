"""Reading file contents out of a mirror in bulk with one ``git cat-file --batch`` process.

Owns blob sizes, the binary test and UTF-8 decoding with replacement. It must never start one
process per blob: a PR with thousands of files is read in a single pass.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from swerl_core.git.command import first_error_line, git_argv, git_env
from swerl_core.git.errors import GitError

_BINARY_PROBE = 8000  # git's own heuristic: a NUL byte in the first 8000 bytes means binary


@dataclass(frozen=True)
class BlobContent:
    """A blob's decoded text (None for binary or too-large blobs) and how it was obtained."""

    sha: str
    size: int
    is_binary: bool
    invalid_utf8: bool
    too_large: bool
    text: str | None


def decode_blob(sha: str, data: bytes, max_bytes: int) -> BlobContent:
    """Classify and decode a blob: binary by git's NUL heuristic, else UTF-8 with replacement."""
    size = len(data)
    if b"\0" in data[:_BINARY_PROBE]:
        return BlobContent(sha, size, True, False, False, None)
    if size > max_bytes:
        return BlobContent(sha, size, False, False, True, None)
    try:
        return BlobContent(sha, size, False, False, False, data.decode("utf-8"))
    except UnicodeDecodeError:
        return BlobContent(sha, size, False, True, False, data.decode("utf-8", "replace"))


def object_sizes(git_dir: Path, shas: Iterable[str]) -> dict[str, int]:
    """Sizes in bytes of the given blobs (absent ones are left out), one git process for all."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    proc = subprocess.run(
        git_argv(git_dir, ["cat-file", "--batch-check=%(objectname) %(objectsize)"]),
        input="".join(f"{s}\n" for s in wanted).encode(),
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: {first_error_line(proc.stderr)}")
    sizes = {}
    for line in proc.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def read_blobs(git_dir: Path, shas: Iterable[str]) -> dict[str, bytes]:
    """Raw contents of the given blobs through one ``git cat-file --batch``; absent ones left out."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    proc = subprocess.Popen(
        git_argv(git_dir, ["cat-file", "--batch"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def feed() -> None:
        # Written from a thread: git answers while we still ask, and both pipes must keep moving.
        try:
            for sha in wanted:
                proc.stdin.write(f"{sha}\n".encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    contents: dict[str, bytes] = {}
    try:
        for _ in wanted:
            header = proc.stdout.readline()
            if not header:
                break
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                continue
            if len(parts) != 3:
                raise GitError(f"unexpected git cat-file answer: {header[:80]!r}")
            size = int(parts[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)
            if parts[1] == b"blob":
                contents[parts[0].decode()] = data
    finally:
        writer.join()
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        code = proc.wait()
    if code != 0:
        raise GitError(f"git cat-file failed: {first_error_line(stderr)}")
    return contents
