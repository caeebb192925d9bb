"""Resuming a study: which monitor settings may change."""

import optuna
import pytest

from sweeps.__main__ import main
from sweeps.storage import study_id, study_storage
from sweeps.study import _records, make_pruner, make_sampler, median_warmup_epochs

# vault.auto_open=false: the resume extends the study, which an opened vault would refuse.
BASE = ["sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1", "vault.auto_open=false",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]


def test_resume_accepts_another_monitor_view_and_refuses_other_early_stopping(in_tmp, capsys):
    assert main(BASE) == 0
    assert main([*BASE[1:], "sweep.n_trials=2", "monitor=verbose", "monitor.plots=false"]) == 0
    assert main([*BASE, "monitor.patience=3"]) == 2
    assert "the fixed config changed since study 'sweeps' was created (monitor.patience)" in capsys.readouterr().err


def test_changing_sampler_or_pruner_says_so_in_one_line_and_the_sweep_goes_on(in_tmp, capsys):
    assert main([*BASE, "sweep.sampler=random", "sweep.pruner=none"]) == 0
    capsys.readouterr()
    assert main([*BASE, "sweep.sampler=tpe", "sweep.pruner=none"]) == 0
    out = capsys.readouterr().out
    assert ("note: sweep.sampler=tpe is ignored: study 'sweeps' ran with sampler random and already holds its 1 "
            "trials, so no trial runs; raise sweep.n_trials to run more with tpe, or start a new study with "
            "sweep.study_name=sweeps-2") in out
    assert "sweep.pruner" not in out
    assert main([*BASE[1:], "sweep.n_trials=2", "sweep.sampler=tpe", "sweep.pruner=hyperband"]) == 0
    out = capsys.readouterr().out
    assert ("note: sweep.sampler changed from random to tpe: the 1 finished trials ran with random, the remaining 1 "
            "use tpe") in out
    assert "note: sweep.pruner changed from none to hyperband" in out
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    assert len(study.trials) == 2 and (study.user_attrs["sampler"], study.user_attrs["pruner"]) == ("tpe", "hyperband")
    assert main([*BASE[1:], "sweep.n_trials=2", "sweep.sampler=tpe", "sweep.pruner=hyperband"]) == 0
    assert "note:" not in capsys.readouterr().out, "said once"


SMALL = ["model=mlp", "model.width=16", "model.depth=1", "trainer.max_epochs=2", "trainer.num_threads=1",
         "sweep.n_trials=4", "sweep.sampler=random", "sweep.pruner=none", "preflight=off",
         "+search.optimizer.lr={type:float,low:0.001,high:0.5,log:true}", "select=off"]


def test_val_loss_sweep_minimizes_names_its_metric_and_opens_the_vault_for_the_lowest(in_tmp):
    import yaml
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    assert main([*SMALL, "sweep.metric=val_loss"]) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    assert study.direction == StudyDirection.MINIMIZE
    assert study.metric_names == ["val_loss"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 2 and len({t.value for t in complete}) >= 2, "a choice between trials to make"
    lowest = min(complete, key=lambda t: t.value)
    assert study.best_trial.number == lowest.number
    assert _records.read(study, "vault.result")["trial"] == lowest.number
    assert _records.read(study, "experiment")["base"]["sweep"]["direction"] == "minimize"
    best = yaml.safe_load((in_tmp / "exports/sweeps/best.yaml").read_text())
    assert best["provenance"]["trial"] == lowest.number and best["sweep"]["direction"] == "minimize"
    assert "value_val_loss" in (in_tmp / "exports/sweeps/trials.csv").read_text().splitlines()[0]


def test_study_made_before_direction_followed_the_metric_resumes(in_tmp, capsys):
    from sweeps.study._study import config_fingerprint

    # As older sweeps made it: direction recorded as maximize, no metric names.
    assert main([*BASE, "sweep.direction=maximize"]) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    study_storage(study).set_study_system_attr(study_id(study), "study:metric_names", None)
    fingerprint = study.user_attrs["config_fingerprint"]
    assert main([*BASE[1:], "sweep.n_trials=2"]) == 0, capsys.readouterr().err
    assert study.metric_names == ["val_accuracy"]
    assert config_fingerprint(_records.read(study, "experiment")) == fingerprint
    assert len(study.trials) == 2


def test_study_maximizing_val_loss_is_refused_on_resume(in_tmp, capsys):
    assert main(BASE) == 0
    # A study of val_loss made when the direction defaulted to maximize: the sweep that picked the worst trial.
    optuna.create_study(study_name="lossy", storage="sqlite:///sweeps.db", direction="maximize")
    assert main([*BASE, "sweep.metric=val_loss", "sweep.study_name=lossy"]) == 2
    err = capsys.readouterr().err
    assert "sweep.direction is 'minimize' (sweep.metric=val_loss) but study 'lossy' was created to maximize" in err


def test_study_made_before_weight_averaging_resumes_and_averaging_counts_as_a_change(in_tmp, capsys):
    from sweeps.study import _records
    from sweeps.study._study import config_fingerprint

    assert main(BASE) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    record = _records.read(study, "experiment")
    for key in ("averaging", "ema_decay", "swa_start_epoch"):  # as sweeps recorded it before averaging existed
        del record["base"]["trainer"][key]
    _records.write(study, "experiment", record)
    study.set_user_attr("config_fingerprint", config_fingerprint(record))
    assert main([*BASE[1:], "sweep.n_trials=2", "trainer.ema_decay=0.5"]) == 0, capsys.readouterr().err
    assert len(study.trials) == 2
    assert main([*BASE[1:], "sweep.n_trials=3", "trainer.averaging=ema"]) == 2
    assert "the fixed config changed since study 'sweeps' was created (trainer.averaging" in capsys.readouterr().err


def _first_pruned_epoch(study: optuna.Study, max_epochs: int) -> int:
    """The first epoch at which the study's pruner stops a trial worse than 5 finished ones.
    MedianPruner keeps its warm-up as _n_warmup_steps and has no public getter: read what prune() does."""
    for _ in range(5):
        trial = study.ask()
        for step in range(max_epochs):
            trial.report(1.0, step)
        study.tell(trial, 1.0)
    trial = study.ask()
    for step in range(max_epochs):
        trial.report(0.0, step)
        if trial.should_prune():
            return step
    raise AssertionError("never pruned")


@pytest.mark.parametrize(("max_epochs", "warmup_epochs"), [(1, 0), (2, 1), (6, 1), (12, 3), (25, 6), (40, 10)])
def test_make_pruner_median_warms_up_a_quarter_of_max_epochs(max_epochs, warmup_epochs):
    pruner = make_pruner("median", max_epochs)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert median_warmup_epochs(max_epochs) == warmup_epochs
    assert _first_pruned_epoch(optuna.create_study(direction="maximize", pruner=pruner), max_epochs) == warmup_epochs


@pytest.mark.parametrize(("warmup_epochs", "expected"), [(None, 10), (0, 0), (20, 20), (39, 39)])
def test_make_pruner_median_warms_up_sweep_pruner_warmup_epochs_when_set(warmup_epochs, expected):
    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", 40, warmup_epochs))
    assert _first_pruned_epoch(study, 40) == expected


@pytest.mark.parametrize(("overrides", "expected"), [([], 3), (["sweep.pruner_warmup_epochs=7"], 7)])
def test_open_study_gives_the_median_pruner_sweep_pruner_warmup_epochs(in_tmp, overrides, expected):
    from sweeps.driver._driver import storage_for
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study

    exp, _ = prepare(["+experiment=quickstart", f"sweep.storage=sqlite:///{in_tmp}/sweeps.db", *overrides])
    assert _first_pruned_epoch(open_study(exp, storage_for(exp)), 12) == expected


def _sampled_x(sampler: optuna.samplers.BaseSampler, n_trials: int = 8) -> list[float]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: (trial.suggest_float("x", -1.0, 1.0) - 0.3) ** 2, n_trials=n_trials)
    return [trial.params["x"] for trial in study.trials]


@pytest.mark.parametrize("startup_trials", [0, 2, 5])
def test_make_sampler_tpe_samples_sweep_tpe_startup_trials_at_random_then_models(startup_trials):
    # TPE draws its startup trials from a RandomSampler with its own seed: the same values, then its own.
    random = _sampled_x(optuna.samplers.RandomSampler(seed=3))
    tpe = _sampled_x(make_sampler("tpe", 3, startup_trials))
    assert tpe[:startup_trials] == random[:startup_trials]
    assert all(a != b for a, b in zip(tpe[startup_trials:], random[startup_trials:]))


@pytest.mark.parametrize(("overrides", "expected"), [([], 8), (["sweep.tpe_startup_trials=3"], 3)])
def test_open_study_gives_tpe_sweep_tpe_startup_trials(in_tmp, overrides, expected):
    from sweeps.driver._driver import storage_for
    from sweeps.experiment._build import derive_seed
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study

    exp, _ = prepare(["+experiment=quickstart", f"sweep.storage=sqlite:///{in_tmp}/sweeps.db", *overrides])
    study = open_study(exp, storage_for(exp))
    random = _sampled_x(optuna.samplers.RandomSampler(seed=derive_seed(exp.cfg.sweep.seed, 0, 0)), 10)
    tpe = _sampled_x(study.sampler, 10)
    assert tpe[:expected] == random[:expected] and tpe[expected] != random[expected]
