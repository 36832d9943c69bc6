"""How the ``swerl`` verbs show a stage's progress on stderr: rendered from :class:`~swerl_core.progress.Progress`.

On a terminal an event with a known total redraws one bar line in place (``[#####.....] 5/10 message``);
anywhere else (a pipe, a log file, CI) every event is one plain line. Results go to stdout, never here.
"""

from __future__ import annotations

import sys
from typing import TextIO

from swerl_core.progress import Progress

_WIDTH = 24


class ProgressLines:
    """A :data:`~swerl_core.progress.ProgressCallback` writing each event to ``stream`` (default stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open_bar = False

    def __call__(self, event: Progress) -> None:
        """Show ``event``: a bar redrawn in place on a terminal when its total is known, else one line."""
        fraction = event.fraction
        if self.live and fraction is not None:
            filled = round(fraction * _WIDTH)
            bar = "#" * filled + "." * (_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {event.message}\033[K")
            self._open_bar = event.step < (event.total or 0)
            if not self._open_bar:
                self.stream.write("\n")
        else:
            if self._open_bar:
                self.stream.write("\n")
                self._open_bar = False
            self.stream.write(event.message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left open (a stage that stopped before its total)."""
        if self._open_bar:
            self._open_bar = False
            try:
                self.stream.write("\n")
                self.stream.flush()
            except OSError:  # the terminal is gone (a hangup): nothing to end, and the stop must not become a crash
                pass
