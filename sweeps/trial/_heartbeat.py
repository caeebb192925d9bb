"""The heartbeat of one running trial, sent from a thread while the trial trains.

``Study.optimize`` starts such a thread for each trial; sweeps drives trials with ``study.ask`` and
``study.tell`` (see ``_driver.run_trials``), so it sends the beats itself, through the storage's own
heartbeat methods (``get_heartbeat_interval``, ``record_heartbeat``: ``RDBStorage`` and the storages
of ``_journal.py``). A storage without them gets no beats, as under ``Study.optimize``.
"""

from __future__ import annotations

import threading
from types import TracebackType

import optuna

__all__ = ["Heartbeat", "heartbeat_interval"]


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between beats for ``storage``; None where it has no heartbeat."""
    if not hasattr(storage, "record_heartbeat") or not hasattr(storage, "get_heartbeat_interval"):
        return None
    return storage.get_heartbeat_interval()


class Heartbeat:
    """Records ``trial_id``'s heartbeat at once and then every interval, until the block ends.

    Args:
        storage: the storage the trial lives in (the object sweeps opened).
        trial_id: the storage's id of the trial.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = heartbeat_interval(storage)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval is not None:
            self._beat()  # the first beat before training starts: a trial is never running without one
            self._thread = threading.Thread(target=self._run, name="sweeps-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _beat(self) -> None:
        try:
            self.storage.record_heartbeat(self.trial_id)
        except Exception:  # a passing storage error: the next beat retries; a stale verdict needs several misses
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()
