"""End to end, in a temporary directory, on the embedded SQLite storage."""

import os

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweeps import export as export_cli
from sweeps import train as train_cli
from sweeps.__main__ import main
from sweeps.experiment._build import trial_seed
from sweeps.study import _records
from sweeps.study._result import result_value

pytestmark = pytest.mark.slow
N = 12
QUICK = ["+experiment=quickstart", f"sweep.n_trials={N}", "select=off"]  # the best trial wins (test_select.py: select)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quickstart")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code = main(QUICK)
    finally:
        os.chdir(cwd)
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{folder}/sweeps.db")
    return folder, code, study


def test_quickstart_reports_every_epoch_and_prunes(quickstart):
    _, code, study = quickstart
    assert code == 0
    trials = study.get_trials()
    assert len(trials) == N and [t.number for t in trials] == list(range(N))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert complete and pruned, "the median pruner stops some quickstart trials"
    for t in complete:
        epochs = result_value(t, "stopped_early_epoch", 12)  # monitor.patience may stop a trial early
        assert sorted(t.intermediate_values) == list(range(1, epochs + 1)) and result_value(t, "epochs_run") == epochs
        assert t.value == max(t.intermediate_values.values())
        assert result_value(t, "best_epoch") == max(t.intermediate_values, key=t.intermediate_values.get)
    for t in pruned:
        last = max(t.intermediate_values)
        assert sorted(t.intermediate_values) == list(range(1, last + 1)) and last < 12
        assert t.user_attrs["pruned_epoch"] == last


def test_trials_record_seed_and_searched_values(quickstart):
    _, _, study = quickstart
    for t in study.get_trials():
        assert t.user_attrs["seed"] == trial_seed(0, t.number)
        config = t.user_attrs["config"]  # one attribute: one storage write
        assert config["optimizer.lr"] == t.params["optimizer.lr"]
        assert config["schedule"] == t.params["schedule"]
        if t.params["schedule"] == "step":
            assert config["schedule.factor"] == t.params["schedule[step].factor"]
    assert len({t.user_attrs["seed"] for t in study.get_trials()}) == N


def test_study_records_fingerprint_and_versions(quickstart):
    _, _, study = quickstart
    attrs = study.user_attrs
    assert len(attrs["space_fingerprint"]) == 16
    assert {"torch", "optuna", "hydra-core", "python"} <= set(_records.read(study, "versions"))
    assert "git_commit" in attrs
    assert _records.read(study, "experiment")["choices"]["model"] == "cnn"
    assert attrs["experiment"] == "quickstart" and attrs["sampler"] == "tpe" and attrs["pruner"] == "median"


def test_quickstart_reaches_097_validation_accuracy(quickstart):
    _, _, study = quickstart
    assert study.best_value >= 0.97


def test_export_writes_best_yaml_and_trials_csv(quickstart):
    import pandas as pd

    folder, _, study = quickstart
    best = (folder / "exports/quickstart/best.yaml").read_text()
    assert best.startswith("# @package _global_\n")
    cfg = yaml.safe_load(best)  # safe_load: plain Python values only, no numpy tags
    assert cfg["provenance"]["trial"] == study.best_trial.number
    assert cfg["provenance"]["value"] == study.best_value
    assert cfg["provenance"]["seed"] == study.best_trial.user_attrs["seed"]
    assert cfg["optimizer"]["lr"] == study.best_trial.params["optimizer.lr"]
    assert {"override /model": "cnn"} in cfg["defaults"]
    table = pd.read_csv(folder / "exports/quickstart/trials.csv")
    assert len(table) == N and set(table["state"]) <= {"COMPLETE", "PRUNED"}
    # What a pandas user reads (sweeps/study/_table.py): params and key attributes, no attribute blobs.
    assert table["params_optimizer.lr"].notna().all()
    assert set(table["end_reason"]) <= {"completed", "pruned"}
    assert not [c for c in table.columns if c.startswith(("user_attrs_", "system_attrs_"))]


def test_exported_best_config_reruns_to_the_same_metric(quickstart, capsys):
    folder, _, study = quickstart
    assert train_cli.main([str(folder / "exports/quickstart/best.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"val_accuracy={study.best_value:.6f}" in out
    assert "reproduced exactly" in out


def test_export_module_exports_on_demand(quickstart, tmp_path):
    folder, _, study = quickstart
    code = export_cli.main(["--storage", f"sqlite:///{folder}/sweeps.db", "--study", "quickstart",
                            "--out", str(tmp_path)])
    assert code == 0
    again = yaml.safe_load((tmp_path / "quickstart/best.yaml").read_text())
    assert again["provenance"]["trial"] == study.best_trial.number
    assert export_cli.main(["--storage", f"sqlite:///{folder}/sweeps.db", "--study", "nope"]) == 2


def test_rerun_resumes_without_new_trials_and_extends_on_larger_n_trials(quickstart, monkeypatch, capsys):
    folder, _, study = quickstart
    monkeypatch.chdir(folder)
    assert main(QUICK) == 0
    assert f"{N} of {N} trials finished" in capsys.readouterr().out
    assert len(study.get_trials()) == N
    assert main(["+experiment=quickstart", f"sweep.n_trials={N + 2}"]) == 2, "the test vault was opened at N"
    assert len(study.get_trials()) == N
    assert main(["+experiment=quickstart", f"sweep.n_trials={N + 2}", "vault.reopen=true"]) == 0
    numbers = [t.number for t in study.get_trials()]
    assert numbers == list(range(N + 2))


def test_changed_search_space_is_refused(quickstart, monkeypatch, capsys):
    folder, _, study = quickstart
    monkeypatch.chdir(folder)
    before = len(study.get_trials())
    assert main([*QUICK, "search.optimizer.lr.high=0.5"]) == 2
    err = capsys.readouterr().err
    assert "search space changed since study 'quickstart' was created" in err
    assert "sweep.study_name=quickstart-2" in err
    assert main([*QUICK, "trainer.max_epochs=20"]) == 2
    assert "trainer.max_epochs" in capsys.readouterr().err
    assert len(study.get_trials()) == before


def test_nan_trial_without_monitor_is_failed_with_epoch_and_sweep_finishes(in_tmp):
    # With the monitor (the default) such a trial is pruned as diverged: tests/sweeps/test_objective.py.
    code = main([
        "sweep.n_trials=4", "sweep.sampler=random", "trainer.max_epochs=2", "monitor=off",
        "+search.optimizer.lr={type:categorical,choices:[0.05,1.0e12]}",
    ])
    assert code == 0
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    trials = study.get_trials()
    assert len(trials) == 4
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["optimizer.lr"] == 1.0e12 for t in failed)
    assert all(t.user_attrs["fail_reason"] == "non-finite loss" and t.user_attrs["fail_epoch"] == 1 for t in failed)
    assert any(t.state == TrialState.COMPLETE for t in trials)
    assert (in_tmp / "exports/sweeps/best.yaml").exists()


def test_failing_trials_are_recorded_and_failure_rate_stops_the_sweep(in_tmp, capsys):
    code = main(["sweep.n_trials=20", "model._target_=tests.helpers.FailsInTraining", "~model.width", "~model.depth",
                 "~model.dropout", "~model.activation", "+search.optimizer.lr={type:float,low:0.01,high:0.1}"])
    assert code == 1
    assert "more than sweep.max_failure_rate=0.5" in capsys.readouterr().out
    trials = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db").get_trials()
    assert len(trials) == 5
    assert all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: planted failure in forward" for t in trials)


TINY = ["trainer.max_epochs=1", "trainer.num_threads=1", "monitor=off", "preflight=off", "select=off",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]


class _FailedByAnotherWorker:
    """An objective whose first trial is failed by another process while it runs (as a worker that
    finds its heartbeat late does), then either returns a value or notices it in ``trial.report``."""

    def __init__(self, storage_url, notices):
        self.storage_url, self.notices, self.calls = storage_url, notices, 0

    def __call__(self, trial):
        self.calls += 1
        x = trial.suggest_float("optimizer.lr", 0.01, 0.1)
        if self.calls == 1:
            other = optuna.storages.RDBStorage(self.storage_url)
            study_id = other.get_study_id_from_name(trial.study.study_name)
            other.set_trial_state_values(other.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                         TrialState.FAIL)
            if self.notices:
                trial.report(0.5, 1)  # raises UpdateFinishedTrialError
        return x


@pytest.mark.parametrize("notices", [False, True])
def test_run_trials_goes_on_after_another_worker_failed_its_running_trial(in_tmp, monkeypatch, capsys, notices):
    """Optuna 5.0.0's Study.optimize raises "AssertionError: Should not reach." (or the tell's
    ValueError) here, which ended the worker (issue 16, item 4)."""
    import sweeps.driver._driver as driver
    import sweeps.driver._loop as loop
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import count_trials, open_study

    url = f"sqlite:///{in_tmp}/sweeps.db"
    exp, data = prepare(["sweep.n_trials=3", f"sweep.storage={url}", *TINY])
    storage = driver.storage_for(exp)
    study = open_study(exp, storage)
    fake = _FailedByAnotherWorker(url, notices)
    monkeypatch.setattr(loop, "Objective", lambda exp, data, renderer=None: fake)
    assert driver.run_trials(exp, data, study) == driver.EXIT_OK
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert count_trials(study) == (3, 0)
    out = capsys.readouterr().out
    assert "trial 0   failed: stale (another worker failed it while it ran" in out


def test_every_trial_pruned_writes_trials_csv_and_exits_5(in_tmp, capsys):
    import pandas as pd

    from sweeps._exit import EXIT_NO_COMPLETED

    code = main(["sweep.n_trials=2", "trainer.max_epochs=2", "trainer.num_threads=1", "preflight=off",
                 "+search.optimizer.lr={type:categorical,choices:[1.0e12]}"])
    assert code == EXIT_NO_COMPLETED
    table = pd.read_csv(in_tmp / "exports/sweeps/trials.csv")
    assert len(table) == 2 and set(table["state"]) == {"PRUNED"}
    assert not (in_tmp / "exports/sweeps/best.yaml").exists()
    out = capsys.readouterr().out
    assert "test vault stays sealed: no trial completed" in out
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    assert _records.read(study, "vault.result") is None


def test_unwritable_export_dir_is_refused_before_anything_is_written(in_tmp, capsys):
    (in_tmp / "blocker").write_text("a file where the export folder should go\n")
    assert main(["sweep.n_trials=2", "sweep.export_dir=blocker/exports", *TINY]) == 2
    err = capsys.readouterr().err
    assert "sweep.export_dir: cannot write to 'blocker/exports/sweeps' (Not a directory)" in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["blocker"], "no storage, no artifacts, no exports"


def test_vault_stays_sealed_when_the_exports_cannot_be_written_at_opening_time(in_tmp, capsys):
    import sweeps.driver._driver as driver
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study
    from sweeps.vault._open import open_when_due
    from sweeps.vault._state import Vault, check_seal

    exp, data = prepare(["sweep.n_trials=1", *TINY])
    study = open_study(exp, driver.storage_for(exp))
    check_seal(study, data, print)
    assert driver.run_trials(exp, data, study) == driver.EXIT_OK
    (in_tmp / "exports").write_text("the export folder became a file during the sweep\n")
    assert open_when_due(study, exp, data, exp.cfg.sweep.storage, print) is None
    assert Vault(study).claims() == [], "the one opening was not spent"
    out = capsys.readouterr().out
    assert "test vault stays sealed: sweep.export_dir: cannot write to 'exports/sweeps' (Not a directory)" in out


def test_exports_unwritable_by_the_end_of_the_run_exit_2_in_one_line_with_the_vault_sealed(in_tmp, capsys,
                                                                                             monkeypatch):
    import sweeps.driver._driver as driver
    from sweeps.vault._state import Vault

    def trials_then_block_the_exports(*args, **kwargs):
        code = run_trials(*args, **kwargs)
        (in_tmp / "exports").write_text("the export folder became a file during the sweep\n")
        return code

    run_trials = driver.run_trials
    monkeypatch.setattr(driver, "run_trials", trials_then_block_the_exports)
    assert main(["sweep.n_trials=1", *TINY]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.splitlines() == ["error: sweep.export_dir: cannot write to 'exports/sweeps' (Not a directory); the "
                                "study keeps its trials: make the folder writable, or set sweep.export_dir, and rerun "
                                "the same command"]
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    assert Vault(study).claims() == [] and len(study.trials) == 1



def test_sweep_draws_every_plot_with_one_renderer_drained_after_the_export(in_tmp, monkeypatch):
    """The search and the selection share the sweep's renderer; its last plots are drawn while the
    vault opens and the study is exported, and are in the artifact store when the command returns."""
    import sweeps.driver._driver as driver
    from sweeps.trial._plots import PLACEHOLDER_PNG
    from sweeps.trial._render import Renderer

    made, events = [], []

    class Recording(Renderer):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

        def submit(self, store_dir, plots, on_failure, note=None):
            events.append("plots")
            super().submit(store_dir, plots, on_failure, note=note)

        def drain(self) -> None:
            events.append("close" if self._process is not None else "closed")
            super().drain()

    export = driver.export_study
    recording = Recording()
    monkeypatch.setattr(driver, "shared_renderer", lambda: recording)
    monkeypatch.setattr(driver, "export_study", lambda *a, **k: events.append("export") or export(*a, **k))
    assert main(["sweep.n_trials=2", "select.top_k=1", "select.n_seeds=1", "trainer.max_epochs=2",
                 "trainer.num_threads=1", "preflight=off", "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]) == 0
    storage = f"sqlite:///{in_tmp}/sweeps.db"
    search = optuna.load_study(study_name="sweeps", storage=storage)
    linked = optuna.load_study(study_name="sweeps.select", storage=storage)
    assert (len(made), len(search.trials), len(linked.trials)) == (1, 2, 1)
    assert events.count("plots") == 3 and events.index("export") < events.index("close")
    pngs = [p for p in (in_tmp / "sweeps_artifacts").rglob("*") if p.is_file() and p.stat().st_size < 100_000
            and p.read_bytes()[:8] == PLACEHOLDER_PNG[:8]]
    assert pngs and all(p.read_bytes() != PLACEHOLDER_PNG for p in pngs)
    recording.close()


@pytest.mark.parametrize("direction,best", [("maximize", 2), ("minimize", 0)])
def test_loop_best_keeps_the_best_completed_trial_from_the_newly_finished(direction, best):
    from sweeps.driver._loop import _Best

    study = optuna.create_study(direction=direction)
    for value, state in ((0.1, TrialState.COMPLETE), (0.9, TrialState.PRUNED), (0.5, TrialState.COMPLETE),
                         (0.5, TrialState.COMPLETE)):
        trial = study.ask()
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    tracked = _Best(study.direction)
    trials = study.get_trials()
    tracked.update(trials[:2])
    assert tracked.trial.number == 0
    tracked.update(trials[2:])  # a tie keeps the earlier trial, as study.best_trial does
    assert tracked.trial.number == best == study.best_trial.number
