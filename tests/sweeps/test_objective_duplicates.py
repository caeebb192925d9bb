"""Duplicate skipping: only the later of two trials with the same parameters defers to the earlier."""

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.experiment._experiment import prepare
from sweeps.study._result import result_value
from sweeps.trial._objective import Objective, _duplicate_of

LR = 0.05
OVERRIDES = ["sweep.n_trials=2", "trainer.max_epochs=1", "trainer.num_threads=1", "monitor=off", "preflight=off",
             f"+search.optimizer.lr={{type:categorical,choices:[{LR}]}}"]


def _two_trials_with_the_same_params():
    """Two running trials of one study, both with the same sampled parameters, as two workers that
    sampled the same configuration at the same moment."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")
    trials = [study.ask(), study.ask()]
    for trial in trials:
        trial.suggest_categorical("optimizer.lr", [LR])
    return study, trials


@pytest.mark.parametrize("known", ["read", "listed"])
@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_duplicate_of_only_the_later_trial_defers_whichever_checks_first(order, known):
    study, trials = _two_trials_with_the_same_params()
    # "listed": the trial loop's own read of the trial list, handed over instead of a second read.
    listed = None if known == "read" else study.get_trials(deepcopy=False)
    found = {i: _duplicate_of(trials[i], trials[i].params, listed) for i in order}
    assert found == {0: None, 1: 0}, "both deferring would leave the configuration unevaluated"


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_objective_evaluates_the_earlier_of_two_identical_trials_in_either_order(in_tmp, order):
    exp, data = prepare(OVERRIDES)
    objective = Objective(exp, data.train_val())
    study, trials = _two_trials_with_the_same_params()
    outcome = {}
    for i in order:
        try:
            outcome[i] = objective(trials[i])
        except optuna.TrialPruned:
            outcome[i] = "pruned"
    assert outcome[1] == "pruned" and isinstance(outcome[0], float)
    assert trials[1].user_attrs["end_reason"] == "duplicate" and trials[1].user_attrs["duplicate_of"] == 0
    assert trials[0].user_attrs["end_reason"] == "completed"
    assert result_value(trials[1], "epochs_run") is None, "the duplicate never trained"
    assert study.get_trials()[0].state == TrialState.RUNNING  # told by the driver, not the objective


def test_duplicate_of_a_trial_listed_running_that_failed_since_is_no_duplicate():
    # The loop's list was read while the earlier trial ran; it failed as stale before this check.
    study, trials = _two_trials_with_the_same_params()
    listed = study.get_trials(deepcopy=False)
    study.tell(trials[0], state=TrialState.FAIL)
    assert _duplicate_of(trials[1], trials[1].params, listed) is None
    assert _duplicate_of(trials[1], trials[1].params, None) is None
