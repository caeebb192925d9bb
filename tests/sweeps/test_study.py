"""Resuming a study: which monitor settings may change."""

from sweeps.__main__ import main

# vault.auto_open=false: the resume extends the study, which an opened vault would refuse.
BASE = ["sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1", "vault.auto_open=false",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]


def test_resume_accepts_another_monitor_view_and_refuses_other_early_stopping(in_tmp, capsys):
    assert main(BASE) == 0
    assert main([*BASE[1:], "sweep.n_trials=2", "monitor=verbose", "monitor.plots=false"]) == 0
    assert main([*BASE, "monitor.patience=3"]) == 2
    assert "the fixed config changed since study 'sweeps' was created (monitor.patience)" in capsys.readouterr().err


SMALL = ["model=mlp", "model.width=16", "model.depth=1", "trainer.max_epochs=2", "trainer.num_threads=1",
         "sweep.n_trials=4", "sweep.sampler=random", "sweep.pruner=none", "preflight=off",
         "+search.optimizer.lr={type:float,low:0.001,high:0.5,log:true}", "select=off"]


def test_val_loss_sweep_minimizes_names_its_metric_and_opens_the_vault_for_the_lowest(in_tmp):
    import optuna
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
    assert study.user_attrs["vault.result"]["trial"] == lowest.number
    assert study.user_attrs["experiment"]["base"]["sweep"]["direction"] == "minimize"
    best = yaml.safe_load((in_tmp / "exports/sweeps/best.yaml").read_text())
    assert best["provenance"]["trial"] == lowest.number and best["sweep"]["direction"] == "minimize"
    assert "value_val_loss" in (in_tmp / "exports/sweeps/trials.csv").read_text().splitlines()[0]


def test_study_made_before_direction_followed_the_metric_resumes(in_tmp, capsys):
    import optuna

    from sweeps._study import config_fingerprint

    # As older sweeps made it: direction recorded as maximize, no metric names.
    assert main([*BASE, "sweep.direction=maximize"]) == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    study._storage.set_study_system_attr(study._study_id, "study:metric_names", None)
    fingerprint = study.user_attrs["config_fingerprint"]
    assert main([*BASE[1:], "sweep.n_trials=2"]) == 0, capsys.readouterr().err
    assert study.metric_names == ["val_accuracy"]
    assert config_fingerprint(study.user_attrs["experiment"]) == fingerprint
    assert len(study.trials) == 2


def test_study_maximizing_val_loss_is_refused_on_resume(in_tmp, capsys):
    import optuna

    assert main(BASE) == 0
    # A study of val_loss made when the direction defaulted to maximize: the sweep that picked the worst trial.
    optuna.create_study(study_name="lossy", storage="sqlite:///sweeps.db", direction="maximize")
    assert main([*BASE, "sweep.metric=val_loss", "sweep.study_name=lossy"]) == 2
    err = capsys.readouterr().err
    assert "sweep.direction is 'minimize' (sweep.metric=val_loss) but study 'lossy' was created to maximize" in err
