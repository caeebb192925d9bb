"""A command's heap and Python's cyclic garbage collector.

A command imports torch, Optuna, Hydra, SQLAlchemy and pandas: about 300,000 objects that live as
long as the process. The collector walks all of them at every full collection, and CPython runs
several while it finalises the interpreter: after ``python -m sweeps`` had printed its last line,
its process spent 1.3-1.8 s more in those walks before it exited, and the workers' fork server as
long again after that (a caller that reads the command's output waits for both). Frozen objects
(:func:`gc.freeze`) are never walked again, are still freed when nothing refers to them, and stay
untouched in a forked child (a walk would write to their pages and copy them).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from typing import NoReturn

__all__ = ["leave", "untraced_imports"]


@contextlib.contextmanager
def untraced_imports() -> Iterator[None]:
    """No collection while a command imports its modules, then what they made frozen.

    Importing makes long-lived objects, not garbage: the collections that the imports of a sweep
    trigger (about 0.5 s of them here) find nothing to free.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def leave(code: int | None) -> NoReturn:
    """Ends a command with exit code ``code``, its heap frozen first: the interpreter's last
    collections then walk nothing (``atexit`` handlers and ``finally`` blocks still run)."""
    gc.freeze()
    sys.exit(code)
