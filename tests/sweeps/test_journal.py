"""Heartbeats on the journal file storage (sweeps.storage._journal), against RDBStorage's behaviour, and the
Optuna behaviour they rely on (its private heartbeat base class)."""

import time

import optuna
import pytest
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import TrialState

import sweeps.storage._journal
from sweeps.storage._journal import HEARTBEAT_ATTR, HeartbeatJournalStorage, heartbeat_time

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)
GRACE_S = 1


class _Clock:
    """Stands in for the ``time`` module inside sweeps.storage._journal: the journal's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(sweeps.storage._journal, "time", fake)
    return fake


def _journal(tmp_path, callback=None, interval=1, grace=GRACE_S):
    return HeartbeatJournalStorage(str(tmp_path / "j.log"), interval, grace, callback)


def _rdb(tmp_path, callback=None, interval=1, grace=GRACE_S):
    return RDBStorage(f"sqlite:///{tmp_path}/rdb.db", heartbeat_interval=interval, grace_period=grace,
                      heartbeat_stale_trial_callback=callback)


def _go_stale(storage, clock):
    """Lets every heartbeat so far grow older than the grace period: by the fake clock for the
    journal, by waiting for RDBStorage (its database's clock)."""
    if isinstance(storage, HeartbeatJournalStorage):
        clock.now += GRACE_S + 10
    else:
        time.sleep(GRACE_S + 1.5)


@pytest.mark.parametrize("make", [_journal, _rdb], ids=["journal", "rdb-sqlite"])
def test_journal_retried_trial_does_not_inherit_its_predecessors_heartbeat(tmp_path, clock, make):
    """Mirrors RDBStorage (heartbeats keyed by trial id): a retry queued by
    RetryHeartbeatStaleTrialCallback, which copies the stale trial's system attributes, is not stale
    before its own first heartbeat, so a second reaper does not fail it at once."""
    storage = make(tmp_path, RetryHeartbeatStaleTrialCallback(max_retry=3))
    study = optuna.create_study(storage=storage)
    first = study.ask()
    storage.record_heartbeat(first._trial_id)
    _go_stale(storage, clock)
    fail_stale_trials(study)  # fails trial 0, queues its retry
    retry = study.ask()  # a worker picks the retry up; it has not beaten yet
    assert retry.number == 1 and RetryHeartbeatStaleTrialCallback.retried_trial_number(
        study.trials[1]) == 0
    fail_stale_trials(study)  # another worker's reaper, before the retry's first beat
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]


def test_journal_retry_goes_stale_on_its_own_heartbeat(tmp_path, clock):
    storage = _journal(tmp_path, RetryHeartbeatStaleTrialCallback(max_retry=3))
    study = optuna.create_study(storage=storage)
    storage.record_heartbeat(study.ask()._trial_id)
    clock.now += 100
    fail_stale_trials(study)
    retry = study.ask()
    storage.record_heartbeat(retry._trial_id)
    assert heartbeat_time(storage.get_trial(retry._trial_id)) == clock.now
    fail_stale_trials(study)
    assert study.trials[1].state == TrialState.RUNNING  # a fresh beat of its own
    clock.now += 100
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING]


def test_journal_bare_number_heartbeat_counts_only_from_the_trials_start(tmp_path, clock):
    """A beat written by an earlier sweeps version (a bare unix time) is judged by the trial's start."""
    storage = _journal(tmp_path)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    started = storage.get_trial(trial._trial_id).datetime_start.timestamp()
    storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, started - 50)  # inherited: ignored
    assert heartbeat_time(storage.get_trial(trial._trial_id)) is None
    storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, started + 1)
    assert heartbeat_time(storage.get_trial(trial._trial_id)) == started + 1


@pytest.mark.parametrize("make", [_journal, _rdb], ids=["journal", "rdb-sqlite"])
def test_journal_heartbeat_on_a_trial_finished_elsewhere_is_ignored(tmp_path, make):
    """Mirrors RDBStorage: the heartbeat thread of a worker whose trial another worker already
    finished (e.g. failed as stale) records nothing and raises nothing."""
    storage = make(tmp_path)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # another worker reaped it
    storage.record_heartbeat(trial._trial_id)
    assert storage.get_trial(trial._trial_id).state == TrialState.FAIL


@pytest.mark.parametrize("interval, grace", [(-1, None), (0, None), (0, 0), (1, 0), (1, -1), (-1, -1)])
@pytest.mark.parametrize("make", [_journal, _rdb], ids=["journal", "rdb-sqlite"])
def test_journal_refuses_a_non_positive_interval_or_grace_period(tmp_path, make, interval, grace):
    """Mirrors RDBStorage.__init__: each of heartbeat_interval and grace_period must be None or a
    positive integer (ValueError otherwise), and the journal file is not created."""
    with pytest.raises(ValueError, match="should be a positive integer"):
        make(tmp_path, interval=interval, grace=grace)
    assert not (tmp_path / "j.log").exists()


@pytest.mark.parametrize("make", [_journal, _rdb], ids=["journal", "rdb-sqlite"])
def test_journal_without_an_interval_sends_no_heartbeats(tmp_path, make):
    """Mirrors RDBStorage: heartbeat_interval=None turns heartbeats off; the grace period defaults."""
    assert not is_heartbeat_enabled(make(tmp_path, interval=None, grace=None))
    assert is_heartbeat_enabled(make(tmp_path, interval=5, grace=None))


def test_journal_default_grace_period_is_twice_the_interval(tmp_path, clock):
    """As RDBStorage: grace_period=None means 2 x heartbeat_interval."""
    storage = _journal(tmp_path, interval=5, grace=None)
    study = optuna.create_study(storage=storage)
    storage.record_heartbeat(study.ask()._trial_id)
    clock.now += 9.5
    assert storage._get_stale_trial_ids(study._study_id) == []
    clock.now += 1
    assert storage._get_stale_trial_ids(study._study_id) == [0]


# The Optuna behaviour the journal's heartbeats rely on. Optuna keeps it in a private module
# (optuna.storages._heartbeat); if any of these fail after an Optuna upgrade, sweeps.storage._journal must follow.


def test_optuna_heartbeat_base_class_asks_for_what_the_journal_implements():
    assert BaseHeartbeat.__abstractmethods__ == {
        "record_heartbeat", "_get_stale_trial_ids", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    assert issubclass(RDBStorage, BaseHeartbeat)


def test_optuna_fail_stale_trials_uses_the_stale_ids_and_calls_the_callback(tmp_path):
    seen = []
    storage = _journal(tmp_path, callback=lambda study, trial: seen.append((trial.number, trial.state)))
    study = optuna.create_study(storage=storage)
    study.ask(), study.ask()
    asked = []
    storage._get_stale_trial_ids = lambda study_id: asked.append(study_id) or [1]
    fail_stale_trials(study)
    assert asked == [study._study_id]
    assert seen == [(1, TrialState.FAIL)]
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.FAIL]


def test_optuna_optimize_reaps_before_each_trial_and_beats_during_it(tmp_path):
    storage = _journal(tmp_path, interval=1, grace=3)
    study = optuna.create_study(storage=storage)
    reaped, beats = [], []
    storage._get_stale_trial_ids = lambda study_id: reaped.append(study_id) or []
    record = storage.record_heartbeat
    storage.record_heartbeat = lambda trial_id: beats.append(trial_id) or record(trial_id)
    study.optimize(lambda trial: trial.number, n_trials=2)
    assert len(reaped) == 2  # fail_stale_trials at the start of each trial
    assert set(beats) == {0, 1}  # the heartbeat thread of each trial called record_heartbeat
    for trial in study.get_trials():
        beat = trial.system_attrs[HEARTBEAT_ATTR]
        assert beat[0] == trial._trial_id
