"""The one place that reads what an ``optuna.Study`` keeps private: its storage and its id.

Optuna 5 gives a Study no public accessor for either (``Study.system_attrs`` and
``set_system_attr`` are gone), yet the study's system attributes, where sweeps keeps its records
(``sweeps/study/_records.py``) and the test vault's claims, are reached only through the storage's
public ``get_study_system_attrs`` / ``set_study_system_attr``, which take the id. Everything else
calls the two functions below; tests/sweeps/test_internals.py pins the Optuna behaviour they rely on,
so that a release that renames the attributes fails there first.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

__all__ = ["study_id", "study_storage", "trial_id"]


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes through (for a URL, the one Optuna opened for it)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """``study``'s id in its storage (``storage.get_study_id_from_name(study.study_name)`` without the read)."""
    return study._study_id


def trial_id(study: optuna.Study, trial: FrozenTrial) -> int:
    """``trial``'s id in ``study``'s storage (the storage's public lookup by trial number)."""
    return study_storage(study).get_trial_id_from_study_id_trial_number(study_id(study), trial.number)
