"""The signals a scheduler sends to stop work, handled as Ctrl-C is.

``timeout``, Prefect's cancellation and a Kubernetes pod deletion send SIGTERM; a closed terminal sends SIGHUP.
Python's default for both is to die at once: no ``finally`` runs, so a training run stays RUNNING in MLflow forever
and a child trainer may outlive its parent. Inside :func:`interruptible` they raise :class:`Interrupted`, a
``KeyboardInterrupt``, so the code that already cleans up after Ctrl-C (the run marked KILLED, the child stopped)
cleans up after them too; :func:`deferred` keeps a short step that must finish whole (creating or closing a run)
from being cut in half.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
REDELIVER_S = 0.05  # a stop that landed in a finalizer is sent again after this long
_active = threading.local()  # whether an interruptible block owns the handlers (only the outermost installs them)


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
    sends SIGKILL, which nothing catches). A signal ignored on entry stays ignored (``nohup`` ignores SIGHUP). The
    previous handlers come back when the outermost block ends; an inner block changes nothing. Outside the main
    thread (Python delivers signals there only) the block changes nothing either.
    """
    if threading.current_thread() is not threading.main_thread() or getattr(_active, "owned", False):
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        if _in_finalizer(frame):
            # Python prints and drops an exception raised in a finalizer (a `__del__` that a garbage collection pass
            # ran, a weakref callback): the stop would be lost. The signal comes again in a moment, from wherever
            # the main thread is then.
            threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum)).start()
            return
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = _install(STOP_SIGNALS, stop)
    _active.owned = True
    try:
        yield
    finally:
        _active.owned = False
        _restore(previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGHUP and SIGINT until the block ends, then act on the first that came (as its handler
    would have: :class:`Interrupted`, ``KeyboardInterrupt``) unless an exception is already on its way out.

    For steps that must not be cut in half: an MLflow run created but its id not yet kept, a run being closed.
    Outside the main thread the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = _install((*STOP_SIGNALS, signal.SIGINT), hold)
    try:
        yield
    finally:
        _restore(previous)
    # Not when an exception is already on its way out (the block sits in a finally: or except: clause of a stop
    # being handled): that one stops the caller, and a second would replace it.
    if held and sys.exc_info()[0] is None:
        first = held[0]
        handler = previous[first]
        if callable(handler):
            handler(first, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(first)


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` or a caller of it is a finalizer, where a raised exception goes nowhere."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or Path(code.co_filename).name == "weakref.py":
            return True
        frame = frame.f_back
    return False


def _install(signals: tuple[int, ...], handler: Callable[[int, FrameType | None], None]) -> dict[int, Any]:
    """Set ``handler`` for each of ``signals`` not ignored now (a signal ignored on entry stays ignored); the
    handlers it replaced, for :func:`_restore`."""
    previous = {each: signal.getsignal(each) for each in signals}
    for each, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(each, handler)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for each, handler in previous.items():
        signal.signal(each, handler if handler is not None else signal.SIG_DFL)
