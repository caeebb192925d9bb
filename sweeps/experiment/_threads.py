"""How many torch CPU threads a trial trains with when ``trainer.num_threads`` is null.

Torch's own default is one intra-op thread per core of the machine. A sweep breaks that default
twice: several workers share the cores, and the models it trains are often small, whose operations
are too short to split (a second thread costs more in hand-offs than it saves, and idle threads
spin). On a busy 2-core machine torch's default made quickstart trials 10x slower than one thread
(docs/benchmarks.md, section 6). So the default is chosen from what the process may use: the cores
of its CPU affinity mask, shared among ``sweep.n_workers``; a small model gets one thread.
"""

from __future__ import annotations

import os

__all__ = ["SMALL_MODEL_PARAMETERS", "available_cores", "choose_threads"]

# Below this many parameters a model trains fastest on one thread (digits' CNN: 5k-23k). Per step
# such a model does microseconds of work per operation: a second thread only adds hand-offs, and on
# a busy machine its spinning made trials up to 10x slower (issue 13).
SMALL_MODEL_PARAMETERS = 1_000_000


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose_threads(n_cores: int, n_workers: int, n_parameters: int | None) -> int:
    """Torch intra-op threads for one worker's training.

    Args:
        n_cores: cores available to the sweep (:func:`available_cores`).
        n_workers: worker processes training at once (``sweep.n_workers``).
        n_parameters: the model's parameter count; None when not known yet (then only the cores
            and workers decide).

    Returns:
        At least 1; never more than the worker's share of the cores, so workers never oversubscribe.
    """
    if n_cores < 1 or n_workers < 1:
        raise ValueError(f"n_cores and n_workers must be >= 1, got {n_cores} and {n_workers}")
    share = max(1, n_cores // n_workers)
    if n_parameters is not None and n_parameters < SMALL_MODEL_PARAMETERS:
        return 1
    return share
