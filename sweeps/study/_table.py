"""``trials.csv``: one row per trial with what a pandas user reads, not every attribute Optuna keeps.

Optuna's ``trials_dataframe`` adds a column per system attribute, and every artifact is one
(``system_attrs_artifacts:<uuid>``: 150 columns after the quickstart). This table holds the number,
state, why the trial ended (once), its value, its duration in seconds, its parameters and the user
attributes worth a column; the rest is in the study (optuna-dashboard).
"""

from __future__ import annotations

import optuna
import pandas as pd

from sweeps.study._result import RESULT_KEYS, result_value
from sweeps.study._trials import end_reason

__all__ = ["KEY_ATTRS", "trials_table"]

# User attribute -> column (the result record's keys by the attributes that held them before it).
KEY_ATTRS = {
    "seed": "seed",
    "best_epoch": "best_epoch",
    "epochs_run": "epochs_run",
    "stopped_early_epoch": "stopped_early_epoch",
    "prune_reason": "prune_reason",
    "fail_reason": "fail_reason",
    "fail_epoch": "fail_epoch",
    "diagnoses": "diagnoses",
    "retry_of": "retry_of",
    "duplicate_of": "duplicate_of",
    "artifact.best_checkpoint": "best_checkpoint",
}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """Every trial of ``study``, oldest first: ``number, state, end_reason, value_<metric>, duration_s,
    datetime_start, datetime_complete``, then ``params_<key>`` for every searched key (sorted; empty
    where a trial did not sample it), then the columns of :data:`KEY_ATTRS` (empty where unset)."""
    trials = study.get_trials(deepcopy=False)
    value = f"value_{(study.metric_names or ['value'])[0]}" if len(study.directions) == 1 else "values"
    params = sorted({key for t in trials for key in t.params})
    head = ["number", "state", "end_reason", value, "duration_s", "datetime_start", "datetime_complete"]
    rows = []
    for t in trials:
        done = t.datetime_complete is not None and t.datetime_start is not None
        rows.append({
            "number": t.number, "state": t.state.name, "end_reason": end_reason(t),
            value: t.value if value != "values" else t.values,
            "duration_s": (t.datetime_complete - t.datetime_start).total_seconds() if done else None,
            "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
            **{f"params_{key}": t.params.get(key) for key in params},
            **{column: _key_attr(t, attr) for attr, column in KEY_ATTRS.items()},
        })
    return pd.DataFrame(rows, columns=[*head, *(f"params_{k}" for k in params), *KEY_ATTRS.values()])


_RESULT_KEY_OF = {attr: key for key, attr in RESULT_KEYS.items()}


def _key_attr(trial: optuna.trial.FrozenTrial, attr: str) -> object:
    key = _RESULT_KEY_OF.get(attr)
    return trial.user_attrs.get(attr) if key is None else result_value(trial, key)
