"""Trial accounting: the slot rule that keeps ``sweep.n_trials`` exact across workers and commands."""

import random

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.storage import trial_id
from sweeps.study._trials import SURPLUS, RunningTally, count_trials, holds_slot, tally


def _study():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(storage=optuna.storages.InMemoryStorage())


def _decide(study, number, n_trials):
    """What a worker does with a new trial: keep it if it holds a slot, else end it as surplus."""
    trial = optuna.Trial(study, trial_id(study, study.get_trials(deepcopy=False)[number]))
    if holds_slot(study.get_trials(deepcopy=False), number, n_trials):
        return True
    trial.set_user_attr("end_reason", SURPLUS)
    study.tell(number, state=TrialState.FAIL)
    return False


def _retry(study, number):
    """Queues trial ``number`` again, as the stale-trial callback and the interrupt handler do."""
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={"retry_of": number}))


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_holds_slot_gives_the_first_n_trials_their_slots_in_any_order_of_deciding(order):
    study = _study()
    for _ in range(4):
        study.ask()
    decided = {number: _decide(study, number, n_trials=2) for number in order}
    assert decided == {0: True, 1: True, 2: False, 3: False}
    assert [t.user_attrs.get("end_reason") for t in study.get_trials()] == [None, None, SURPLUS, SURPLUS]


def test_holds_slot_a_retry_inherits_the_slot_of_the_trial_it_retries():
    study = _study()
    for _ in range(2):
        study.ask()
    study.tell(0, state=TrialState.FAIL)  # went stale
    _retry(study, 0)
    study.ask()  # pops the retry: trial 2
    assert study.get_trials()[2].user_attrs["retry_of"] == 0
    assert holds_slot(study.get_trials(), 2, n_trials=2)
    study.ask()  # a new trial 3: trials 0 (through its retry) and 1 hold both slots
    assert not holds_slot(study.get_trials(), 3, n_trials=2)


def test_holds_slot_a_retry_of_a_trial_without_a_slot_holds_none_and_frees_nothing():
    study = _study()
    for _ in range(3):
        study.ask()
    study.tell(2, state=TrialState.FAIL)  # trial 2 went stale before deciding (it held no slot)
    _retry(study, 2)
    study.ask()  # trial 3, the retry of 2
    assert not _decide(study, 3, n_trials=2)
    # Trial 2's chain ends in a surplus trial: it takes no slot, so an extended study fills the gap.
    study.ask()
    assert holds_slot(study.get_trials(), 4, n_trials=3)
    study.ask()
    assert not holds_slot(study.get_trials(), 5, n_trials=3)


def test_holds_slot_surplus_trials_do_not_count_when_the_study_is_extended():
    study = _study()
    for _ in range(3):
        study.ask()
    assert not _decide(study, 2, n_trials=2)
    for number in (0, 1):
        study.tell(number, 1.0)
    assert count_trials(study) == (2, 0)
    study.ask()
    assert holds_slot(study.get_trials(), 3, n_trials=3), "sweep.n_trials=3 later: the surplus trial left no hole"


@pytest.mark.parametrize("seed", range(20))
def test_holds_slot_random_interleavings_of_workers_end_with_exactly_n_trials(seed):
    """Workers that each count, create and decide trials in an arbitrary interleaving (the count may
    be stale: it is read before others create theirs), with trials going stale and being retried,
    end with exactly ``n_trials`` counted trials and never a surplus trial counted."""
    rng = random.Random(seed)
    n_trials = rng.randint(1, 6)
    study = _study()
    undecided, running = [], []
    for _ in range(500):
        counts = tally(study.get_trials(deepcopy=False))
        if counts.finished >= n_trials and not undecided and not running:
            break
        action = rng.random()
        if action < 0.35 and counts.finished + counts.running <= n_trials + 1:  # a stale count: may overshoot
            undecided.append(study.ask().number)
        elif action < 0.6 and undecided:
            number = undecided.pop(rng.randrange(len(undecided)))
            if _decide(study, number, n_trials):
                running.append(number)
        elif running:
            number = running.pop(rng.randrange(len(running)))
            if rng.random() < 0.2:
                study.tell(number, state=TrialState.FAIL)
                _retry(study, number)
            else:
                study.tell(number, float(number))
    assert not undecided and not running
    trials = study.get_trials()
    assert tally(trials).finished == n_trials
    assert all(t.state.is_finished() for t in trials)
    holders = [t for t in trials if t.state.is_finished() and t.user_attrs.get("end_reason") != SURPLUS
               and t.number not in {u.user_attrs.get("retry_of") for u in trials}]
    assert len(holders) == n_trials


@pytest.mark.parametrize("seed", range(5))
def test_running_tally_equals_a_full_tally_after_every_change(seed):
    """Random asks, completions, failures, prunings, surplus trials, retries of failed trials (which
    stop counting) and queued retries that start: the incremental tally never departs from tally()."""
    rng = random.Random(seed)
    study, running_tally = _study(), RunningTally()
    for _ in range(120):
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        failed = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("end_reason") != SURPLUS]
        action = rng.random()
        if action < 0.35 or not running:
            study.ask()  # also starts a queued retry, if any
        elif action < 0.8:
            state = rng.choice([TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED])
            study.tell(rng.choice(running).number, 0.5 if state == TrialState.COMPLETE else None, state=state)
        elif action < 0.9:
            trial = optuna.Trial(study, trial_id(study, rng.choice(running)))
            trial.set_user_attr("end_reason", SURPLUS)
            study.tell(trial.number, state=TrialState.FAIL)
        elif failed:
            _retry(study, rng.choice(failed).number)
        trials = study.get_trials(deepcopy=False)
        assert running_tally(trials) == tally(trials)
    assert tally(study.get_trials(deepcopy=False)).finished > 10


def test_running_tally_starts_over_on_another_study():
    first, second, running_tally = _study(), _study(), RunningTally()
    for _ in range(3):
        first.tell(first.ask(), 1.0)
    second.tell(second.ask(), 1.0)
    assert running_tally(first.get_trials(deepcopy=False)).finished == 3
    assert running_tally(second.get_trials(deepcopy=False)).finished == 1
