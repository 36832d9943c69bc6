"""The signals a scheduler sends to stop work, handled as Ctrl-C is.

``timeout``, Prefect's cancellation and a Kubernetes pod deletion send SIGTERM; a closed terminal sends SIGHUP.
Python's default for both is to die at once: no ``finally`` runs, so a training run stays RUNNING in MLflow forever
and a child trainer may outlive its parent. Inside :func:`interruptible` they raise :class:`Interrupted`, a
``KeyboardInterrupt``, so the code that already cleans up after Ctrl-C (the run marked KILLED, the child stopped)
cleans up after them too.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop, clean up, and exit with ``exit_code`` (128 + the signal, as a shell says)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The exit status a process killed by this signal would have had in a shell."""
        return 128 + self.signum


def interrupt_exit_code(exc: BaseException) -> int:
    """The exit status for a stop by ``exc``: 128 + its signal for :class:`Interrupted`, 130 (SIGINT) otherwise."""
    return exc.exit_code if isinstance(exc, Interrupted) else 128 + signal.SIGINT


def interrupted_by(exc: BaseException) -> str:
    """``interrupted (SIGTERM)`` or plain ``interrupted`` (Ctrl-C): the one line a stopped command prints."""
    return f"interrupted ({exc})" if isinstance(exc, Interrupted) else "interrupted"


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.

    The first one raises; later ones are ignored while the cleanup it started runs (a scheduler that loses patience
    sends SIGKILL, which nothing catches). The previous handlers come back when the block ends. Outside the main
    thread (Python delivers signals there only) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {each: signal.signal(each, stop) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler if handler is not None else signal.SIG_DFL)
