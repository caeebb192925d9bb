"""A trial's result record: what its training ended with, in one user attribute.

A completed trial used to write seven user attributes after training (device, best epoch, epochs
run, early-stop epoch, diagnoses, two checkpoint ids), each one storage write: a commit on SQLite.
They are now one object, ``result``, written once at the end of the trial, e.g.
``{"device": "cpu", "best_epoch": 9, "epochs_run": 12, "diagnoses": "none", "best_checkpoint":
"<artifact id>", "last_checkpoint": "<artifact id>"}``. The dashboard shows it as one attribute;
``trials.csv`` has its keys as the columns they were. :func:`result_value` reads a key from the
record, or from the separate attribute a study written before the record holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

__all__ = ["RESULT_ATTR", "RESULT_KEYS", "result_value"]

RESULT_ATTR = "result"
# Record key -> the user attribute that held it before the record (for studies written then).
RESULT_KEYS = {
    "device": "device",
    "best_epoch": "best_epoch",
    "epochs_run": "epochs_run",
    "stopped_early_epoch": "stopped_early_epoch",
    "diagnoses": "diagnoses",
    "best_checkpoint": "artifact.best_checkpoint",
    "last_checkpoint": "artifact.last_checkpoint",
}


def result_value(trial: FrozenTrial | Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``key`` (one of :data:`RESULT_KEYS`) of a trial's result record, or ``default``.

    Args:
        trial: a trial, or its user attributes.
    """
    attrs = trial if isinstance(trial, Mapping) else trial.user_attrs
    record = attrs.get(RESULT_ATTR)
    if isinstance(record, Mapping) and key in record:
        return record[key]
    return attrs.get(RESULT_KEYS[key], default)
