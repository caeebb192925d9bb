"""Pins the Optuna behaviour that sweeps/storage/_internals.py relies on: a Study's private storage and
id are the storage it was loaded through and its id there, and the storage's public system-attribute
methods reach the study's records through them."""

import optuna
import pytest

from sweeps.storage import study_id, study_storage, trial_id
from sweeps.storage._url import open_storage


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_internals_study_storage_and_id_reach_the_studys_system_attrs(tmp_path, kind):
    storage = {"sqlite": lambda: optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db"),
               "journal": lambda: open_storage(str(tmp_path / "s.journal")),
               "memory": optuna.storages.InMemoryStorage}[kind]()
    optuna.create_study(storage=storage, study_name="other")
    study = optuna.create_study(storage=storage, study_name="mine")
    # Optuna wraps an RDBStorage in its cache; the others are the very object.
    assert study_storage(study) is storage or kind == "sqlite"
    assert study_id(study) == storage.get_study_id_from_name("mine") != storage.get_study_id_from_name("other")
    study_storage(study).set_study_system_attr(study_id(study), "sweeps:x", {"a": 1})
    loaded = optuna.load_study(study_name="mine", storage=storage)
    assert study_storage(loaded).get_study_system_attrs(study_id(loaded)) == {"sweeps:x": {"a": 1}}


def test_internals_a_url_study_reads_what_another_process_wrote(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, study_name="mine")
    writer = optuna.storages.RDBStorage(url)
    writer.set_study_system_attr(writer.get_study_id_from_name("mine"), "sweeps:x", 2)
    assert study_storage(study).get_study_system_attrs(study_id(study))["sweeps:x"] == 2


def test_internals_trial_id_is_the_storages_id_of_the_numbered_trial(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    other = optuna.create_study(storage=storage, study_name="other")
    other.ask()  # trial id 1 in the storage, number 0 in its study
    study = optuna.create_study(storage=storage, study_name="mine")
    study.ask()
    trial = study.get_trials()[0]
    assert trial.number == 0 and trial_id(study, trial) == trial._trial_id == 2
