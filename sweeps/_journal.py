"""Optuna's journal file storage with heartbeats, which Optuna implements only for RDB storages.

Each running trial records a heartbeat as a system attribute; a trial whose heartbeat is older than
the grace period is stale: Optuna's own machinery (``fail_stale_trials`` at the start of every
trial, the heartbeat thread, the stale-trial callback) then works as it does for RDBStorage.
"""

from __future__ import annotations

import time
from typing import Callable

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = ["HeartbeatJournalStorage", "HEARTBEAT_ATTR"]

HEARTBEAT_ATTR = "sweeps:heartbeat"


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal file storage whose trials send heartbeats.

    Args:
        path: the journal file.
        heartbeat_interval: seconds between heartbeats of a running trial.
        grace_period: seconds without a heartbeat after which a running trial is stale.
        stale_trial_callback: called with each trial failed as stale (e.g. to retry it).
    """

    def __init__(
        self,
        path: str,
        heartbeat_interval: int,
        grace_period: int,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(JournalFileBackend(path))
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is not None and now - beat > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_trial_callback
