"""trials.csv: the columns a pandas user reads, one row per trial."""

import datetime

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.driver._export import export_study
from sweeps.study._table import trials_table

START = datetime.datetime(2026, 1, 1, 12, 0, 0)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names


def _study_with_artifacts(completed: bool = True) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.set_metric_names(["val_accuracy"])
    lr = FloatDistribution(0.001, 0.1, log=True)
    system = {f"artifacts:{i:08d}-uuid": {"artifact_id": str(i), "filename": "x.png"} for i in range(5)}
    study.add_trial(create_trial(
        state=TrialState.COMPLETE if completed else TrialState.PRUNED, value=0.9 if completed else None,
        params={"optimizer.lr": 0.01}, distributions={"optimizer.lr": lr},
        user_attrs={"seed": 7, "best_epoch": 3, "epochs_run": 4, "end_reason": "completed", "config.optimizer.lr": 0.01,
                    "artifact.best_checkpoint": "abc", "preflight.init_loss.value": 2.3},
        system_attrs=system,
    ))
    pruned = create_trial(state=TrialState.PRUNED, params={"optimizer.lr": 0.05}, distributions={"optimizer.lr": lr},
                          intermediate_values={1: 0.2}, user_attrs={"seed": 8, "end_reason": "pruned: diverged",
                                                                    "prune_reason": "diverged at epoch 1"})
    pruned.datetime_start, pruned.datetime_complete = START, START + datetime.timedelta(seconds=1.5)
    study.add_trial(pruned)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "boom"}))
    return study


def test_trials_table_has_params_value_state_duration_reason_and_key_attrs_only():
    table = trials_table(_study_with_artifacts())
    assert list(table.columns) == [
        "number", "state", "end_reason", "value_val_accuracy", "duration_s", "datetime_start", "datetime_complete",
        "params_optimizer.lr", "seed", "best_epoch", "epochs_run", "stopped_early_epoch", "prune_reason",
        "fail_reason", "fail_epoch", "diagnoses", "retry_of", "duplicate_of", "best_checkpoint",
    ]
    assert table["state"].tolist() == ["COMPLETE", "PRUNED", "FAIL"]
    assert table["end_reason"].tolist() == ["completed", "pruned: diverged", "failed: exception"]
    assert table.loc[0, "value_val_accuracy"] == 0.9 and table.loc[1, "duration_s"] == 1.5
    assert table.loc[0, "best_checkpoint"] == "abc" and table.loc[1, "prune_reason"] == "diverged at epoch 1"


def test_exported_trials_csv_reads_back_without_artifact_columns_or_a_second_end_reason(tmp_path):
    study = _study_with_artifacts(completed=False)  # a completed trial needs a recorded experiment for best.yaml
    exported = export_study(study, "sqlite:///unused.db", tmp_path)
    table = pd.read_csv(exported.trials_csv)
    assert table.shape == (3, 19)
    assert not [c for c in table.columns if "artifacts:" in c or c.startswith("system_attrs")]
    assert list(table.columns).count("end_reason") == 1
    assert table["params_optimizer.lr"].tolist()[:2] == [0.01, 0.05]


def test_trials_table_of_an_empty_study_has_the_columns():
    assert list(trials_table(optuna.create_study()).columns)[:4] == ["number", "state", "end_reason", "value_value"]
