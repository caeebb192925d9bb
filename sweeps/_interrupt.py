"""SIGINT and SIGTERM as one exception, so that a sweep stops cleanly and can resume.

Ctrl-C (SIGINT) and SIGTERM (what SLURM, Kubernetes and ``kill`` send before a kill) both raise
:class:`Interrupted` in the main thread, once: the running trial is ended as ``interrupted`` and
queued again, and the command exits 130 or 143. A later signal while the sweep is stopping is only
counted (a worker can get the terminal's Ctrl-C and its parent's forwarded copy). Storage bookkeeping
that must not be cut in half runs inside :func:`deferred`: a signal that arrives there is raised
when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from sweeps._exit import EXIT_SIGINT, EXIT_SIGTERM

__all__ = ["SIGNALS", "Interrupted", "deferred", "handling_signals", "ignoring_signals", "n_signals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_EXIT_CODES = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}
RESUME = "rerun the same command to resume"


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM received by this process.

    Attributes:
        signum: the signal.
        message: the one line the command prints (a step that knows more may replace it).
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = signum
        self.message = message or f"interrupted by {signal.Signals(signum).name}; {RESUME}"
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES.get(self.signum, 128 + self.signum)


class _State:
    def __init__(self) -> None:
        self.installed = False
        self.depth = 0  # nesting of deferred() blocks
        self.pending: int | None = None
        self.received: list[int] = []


_state = _State()


def _handle(signum: int, frame: object) -> None:
    _state.received.append(signum)
    if len(_state.received) > 1:
        return  # already stopping
    if _state.depth:
        _state.pending = signum
        return
    raise Interrupted(signum)


def n_signals() -> int:
    """How many SIGINT/SIGTERM this process received since :func:`handling_signals` began."""
    return len(_state.received)


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """Turns SIGINT and SIGTERM into :class:`Interrupted` for the duration; re-entrant. Signals reach
    only the main thread, so elsewhere this does nothing."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handle) for sig in SIGNALS}
    _state.installed = True
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.__init__()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Holds a SIGINT/SIGTERM that arrives inside the block until the block has ended. Signals reach
    only the main thread, so elsewhere (a heartbeat thread) this does nothing: it must never raise
    the main thread's signal there, nor hold it while the main thread runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
    if _state.depth == 0 and _state.pending is not None:
        signum, _state.pending = _state.pending, None
        raise Interrupted(signum)


@contextlib.contextmanager
def ignoring_signals() -> Iterator[None]:
    """Ignores SIGINT and SIGTERM for the duration (a few milliseconds): a process started inside
    inherits the ignored disposition, so a signal during its start-up (imports, before it installs
    its own handlers) cannot print a KeyboardInterrupt traceback; its parent forwards the signal
    again until it has exited."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
