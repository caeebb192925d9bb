"""The trial's result record: one user attribute, read with a fallback for studies written before it."""

import optuna

from sweeps.study._result import RESULT_ATTR, result_value


def test_result_value_reads_the_record_then_the_attribute_of_older_studies():
    record = {RESULT_ATTR: {"best_epoch": 4, "best_checkpoint": "new"}, "best_epoch": 9,
              "artifact.best_checkpoint": "old", "epochs_run": 12}
    assert result_value(record, "best_epoch") == 4
    assert result_value(record, "best_checkpoint") == "new"
    assert result_value(record, "epochs_run") == 12  # not in the record: the older attribute
    assert result_value({"artifact.best_checkpoint": "old"}, "best_checkpoint") == "old"
    assert result_value({}, "device", "n/a") == "n/a"


def test_result_value_takes_a_trial():
    trial = optuna.trial.create_trial(value=1.0, user_attrs={RESULT_ATTR: {"device": "cpu"}})
    assert result_value(trial, "device") == "cpu" and result_value(trial, "diagnoses") is None


def test_trials_table_has_the_records_keys_as_columns():
    from sweeps.study._table import trials_table

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        "end_reason": "completed", RESULT_ATTR: {"device": "cpu", "best_epoch": 3, "epochs_run": 5,
                                                 "stopped_early_epoch": 5, "diagnoses": "none",
                                                 "best_checkpoint": "abc", "last_checkpoint": "def"}}))
    row = trials_table(study).iloc[0]
    assert (row["best_epoch"], row["epochs_run"], row["stopped_early_epoch"]) == (3, 5, 5)
    assert (row["diagnoses"], row["best_checkpoint"]) == ("none", "abc")
