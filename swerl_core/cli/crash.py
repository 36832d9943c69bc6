"""The CLI's top-level rule for unexpected exceptions: one line for the user, the traceback in a log file.

The log lands in ``$SWERL_HOME/logs/`` (the system's temporary directory when that cannot be written), so a bug
report can carry the whole traceback while the terminal shows one line. ``--debug`` prints the traceback instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from swerl_core.config import Settings


def report_crash(verb: str, exc: BaseException, settings: Settings | None, debug: bool) -> int:
    """Print one line about ``exc`` (or its traceback under ``debug``) and return exit code 1."""
    text = "".join(traceback.format_exception(exc))
    if debug:
        print(text, end="", file=sys.stderr)
        return 1
    where = crash_log(text, _home(settings))
    summary = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    named = f"{type(exc).__name__}: {summary}" if summary else type(exc).__name__
    print(
        f"swerl {verb}: unexpected error: {named} (traceback in {where}; --debug prints it)",
        file=sys.stderr,
    )
    return 1


def crash_log(text: str, home: Path) -> Path:
    """Write ``text`` to a new log file under ``home/logs`` (else the temporary directory); returns its path."""
    name = f"crash-{datetime.now(UTC):%Y%m%d-%H%M%S}-{os.getpid()}.log"
    for folder in (home / "logs", Path(tempfile.gettempdir()) / "swerl-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path.resolve()
        except OSError:
            continue
    return Path(os.devnull)


def _home(settings: Settings | None) -> Path:
    if settings is not None:
        return settings.home
    return Path(os.environ.get("SWERL_HOME") or "data")
