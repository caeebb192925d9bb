"""Heartbeats for the storages Optuna gives none: the journal file and the gRPC storage proxy.

Optuna implements heartbeats only for ``RDBStorage`` (a table keyed by trial id). Here each running
trial records its heartbeat as a system attribute, ``[trial_id, unix_time]``; a running trial whose
own last heartbeat is older than the grace period is stale. Optuna's machinery (``fail_stale_trials``
at the start of every trial, the heartbeat thread, the stale-trial callback) then works as it does
for ``RDBStorage``.

This is the only module that uses Optuna's private heartbeat base class
(``optuna.storages._heartbeat.BaseHeartbeat``): Optuna 5.0 has no public one. ``RDBStorage`` itself
inherits it, and ``optuna.storages.fail_stale_trials`` and ``Study.optimize`` act on any storage that
does; ``_signal_safe.py`` takes it from here. tests/sweeps/test_journal.py pins the behaviour of
Optuna's that this relies on.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = ["HEARTBEAT_ATTR", "HeartbeatGrpcStorageProxy", "HeartbeatJournalStorage", "heartbeat_time"]

HEARTBEAT_ATTR = "sweeps:heartbeat"
StaleTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def heartbeat_time(trial: FrozenTrial) -> float | None:
    """The unix time of ``trial``'s own last heartbeat, or None if it sent none.

    A beat written for another trial does not count: Optuna's ``RetryHeartbeatStaleTrialCallback``
    copies the stale trial's system attributes, heartbeat included, into its retry. A bare number is a
    beat of an earlier sweeps version; it counts only if it is not older than the trial's start.
    """
    beat: Any = trial.system_attrs.get(HEARTBEAT_ATTR)
    if isinstance(beat, list) and len(beat) == 2:
        return float(beat[1]) if beat[0] == trial._trial_id else None
    if isinstance(beat, (int, float)) and trial.datetime_start is not None:
        return float(beat) if beat >= trial.datetime_start.timestamp() else None
    return None


def _check_heartbeat_args(heartbeat_interval: int | None, grace_period: int | None) -> None:
    """The rule and messages of ``RDBStorage.__init__``: each must be None or a positive integer."""
    if heartbeat_interval is not None and heartbeat_interval <= 0:
        raise ValueError("The value of `heartbeat_interval` should be a positive integer.")
    if grace_period is not None and grace_period <= 0:
        raise ValueError("The value of `grace_period` should be a positive integer.")


class _SystemAttrHeartbeat(BaseHeartbeat):
    """Heartbeats kept in a trial system attribute, for any storage; mixed into a storage class.

    Staleness is judged against this process's clock: workers on several machines (gRPC proxy) need
    clocks in step (NTP) to well within the grace period.
    """

    _heartbeat_interval: int | None
    _grace_period: int | None
    _stale_trial_callback: StaleTrialCallback | None

    def _init_heartbeat(self, heartbeat_interval: int | None, grace_period: int | None,
                        stale_trial_callback: StaleTrialCallback | None) -> None:
        _check_heartbeat_args(heartbeat_interval, grace_period)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, [trial_id, time.time()])  # type: ignore[attr-defined]
        except UpdateFinishedTrialError:
            # Another worker finished it (e.g. failed it as stale): RDBStorage ignores a beat then too.
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self._heartbeat_interval is not None
        grace_s = self._grace_period if self._grace_period is not None else 2 * self._heartbeat_interval
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))  # type: ignore[attr-defined]
        stale = []
        for trial in running:
            beat = heartbeat_time(trial)
            if beat is not None and now - beat > grace_s:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleTrialCallback | None:
        return self._stale_trial_callback


class HeartbeatJournalStorage(JournalStorage, _SystemAttrHeartbeat):
    """A journal file storage whose trials send heartbeats.

    Args:
        path: the journal file.
        heartbeat_interval: seconds between heartbeats of a running trial; None: no heartbeats.
        grace_period: seconds without a heartbeat after which a running trial is stale; None: twice
            the interval.
        stale_trial_callback: called with each trial failed as stale (e.g. to retry it).

    Raises:
        ValueError: ``heartbeat_interval`` or ``grace_period`` is not None and not positive (as
            ``RDBStorage`` does).
    """

    def __init__(
        self,
        path: str,
        heartbeat_interval: int | None,
        grace_period: int | None = None,
        stale_trial_callback: StaleTrialCallback | None = None,
    ) -> None:
        _check_heartbeat_args(heartbeat_interval, grace_period)  # before the file is created
        super().__init__(JournalFileBackend(path))
        self._init_heartbeat(heartbeat_interval, grace_period, stale_trial_callback)


class HeartbeatGrpcStorageProxy(GrpcStorageProxy, _SystemAttrHeartbeat):
    """Optuna's gRPC storage proxy client whose trials send heartbeats.

    The proxy forwards storage calls only (no heartbeat call), so a heartbeat travels as a system
    attribute through it into the database behind it.

    Args:
        host: the proxy's host.
        port: the proxy's port.
        heartbeat_interval, grace_period, stale_trial_callback: as :class:`HeartbeatJournalStorage`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        heartbeat_interval: int | None,
        grace_period: int | None = None,
        stale_trial_callback: StaleTrialCallback | None = None,
    ) -> None:
        _check_heartbeat_args(heartbeat_interval, grace_period)
        super().__init__(host=host, port=port)
        self._init_heartbeat(heartbeat_interval, grace_period, stale_trial_callback)
