"""One trial with the monitor: divergence prunes at once with the reason; reports on every outcome."""

import optuna
from optuna.trial import TrialState
from optuna_dashboard import get_note

from sweeps.__main__ import main
from sweeps.storage import trial_id
from sweeps.study._result import result_value

DIVERGING = ["sweep.n_trials=4", "sweep.sampler=random", "trainer.max_epochs=3", "trainer.num_threads=1",
             "+search.optimizer.lr={type:categorical,choices:[0.05,1.0e12]}"]


def test_objective_prunes_a_planted_divergence_in_the_first_epoch_with_the_reason(in_tmp, capsys):
    assert main(DIVERGING) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    trials = [t for t in study.get_trials() if t.user_attrs.get("end_reason") != "duplicate"]
    diverged = [t for t in trials if t.params["optimizer.lr"] == 1.0e12]
    assert diverged and all(t.state == TrialState.PRUNED for t in diverged)
    for t in diverged:
        assert t.user_attrs["prune_reason"].startswith("diverged: ")
        assert t.user_attrs["pruned_epoch"] == 1 and not t.intermediate_values
        assert "diverged" in result_value(t, "diagnoses").split(",")
        note = get_note(optuna.Trial(study, trial_id(study, t)))
        assert "**pruned**: `diverged: " in note and "- **diverged** (error, epoch 1)" in note
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["optimizer.lr"] == 0.05)
    assert "diverged: " in capsys.readouterr().out, "the progress line says why"


def test_objective_records_why_the_pruner_stopped_a_trial(in_tmp):
    assert main(["sweep.n_trials=6", "trainer.max_epochs=2", "trainer.num_threads=1", "sweep.pruner=successive_halving",
                 "sweep.sampler=random", "+search.optimizer.lr={type:float,low:1.0e-4,high:0.3,log:true}"]) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    pruned = [t for t in study.get_trials() if t.state == TrialState.PRUNED]
    assert pruned
    for t in pruned:
        epoch = t.user_attrs["pruned_epoch"]
        assert t.user_attrs["prune_reason"] == f"pruned at epoch {epoch} by the SuccessiveHalvingPruner"
        assert "**pruned**: `pruned at epoch" in get_note(optuna.Trial(study, trial_id(study, t)))


class _AlwaysPruneTrial:
    """The trial a _Reporter sees, with a pruner that would stop every epoch it is asked about."""

    def __init__(self):
        self.reported, self.user_attrs = [], {}
        self.study = type("Study", (), {"pruner": optuna.pruners.MedianPruner()})()

    def report(self, value, step):
        self.reported.append(step)

    def should_prune(self):
        return True

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def test_reporter_asks_the_pruner_only_from_the_epoch_the_trial_is_judged_from():
    import pytest

    from practices.train import EpochStats
    from sweeps.trial._objective import _Reporter

    trial = _AlwaysPruneTrial()
    reporter = _Reporter(trial, "val_accuracy", prune_from_epoch=3)  # an SWA trial whose average starts at 3
    assert [reporter.on_epoch_end(EpochStats(epoch, 1.0, 0.5, 0.5, 0.1)) for epoch in (1, 2)] == [False, False]
    with pytest.raises(optuna.TrialPruned):
        reporter.on_epoch_end(EpochStats(3, 1.0, 0.5, 0.5, 0.1))
    assert trial.reported == [1, 2, 3] and trial.user_attrs["pruned_epoch"] == 3  # every epoch reported
