"""A study's machine records: the recorded experiment, package versions, and the test vault's seal,
claims, result and audit list.

They live in the study's system attributes (``sweeps:<key>``), written and read through the storage's
public ``set_study_system_attr`` / ``get_study_system_attrs``, so that the study's user attributes, which
``optuna studies`` prints in one row and optuna-dashboard lists, stay a handful of short labels. Studies
recorded before the move kept these records in user attributes; :func:`read` falls back to those.
"""

from __future__ import annotations

from typing import Any

import optuna

from sweeps.storage._internals import study_id, study_storage

__all__ = ["PREFIX", "PREFLIGHT_CACHE", "read", "write"]

PREFIX = "sweeps:"
# The preflight cache: a study user attribute per architecture fingerprint (sweeps/trial/_preflight.py),
# copied to the linked study of seed-robust selection (sweeps/study/_select.py).
PREFLIGHT_CACHE = "preflight.cache."


def _where(study: optuna.Study) -> tuple[optuna.storages.BaseStorage, int]:
    return study_storage(study), study_id(study)


def read(study: optuna.Study, key: str, default: Any = None, *, legacy: type | tuple[type, ...] = object) -> Any:
    """The record ``key`` of ``study`` (read afresh from the storage); for an older study, its user
    attribute ``key`` where that is an instance of ``legacy``; else ``default``."""
    storage, study_id = _where(study)
    attrs = storage.get_study_system_attrs(study_id)
    if PREFIX + key in attrs:
        return attrs[PREFIX + key]
    old = study.user_attrs.get(key)
    return old if old is not None and isinstance(old, legacy) else default


def write(study: optuna.Study, key: str, value: Any) -> None:
    """Records ``value`` (plain JSON) as ``key`` of ``study``."""
    storage, study_id = _where(study)
    storage.set_study_system_attr(study_id, PREFIX + key, value)
