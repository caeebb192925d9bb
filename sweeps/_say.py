"""What a command tells its user: one line on stdout, flushed at once (progress lines interleave
with worker processes' and Hydra's output)."""

from __future__ import annotations

__all__ = ["say"]


def say(message: str) -> None:
    """Prints ``message`` to stdout and flushes."""
    print(message, flush=True)
