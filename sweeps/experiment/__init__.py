"""An experiment ready to run: composed, validated, its data split and its test split sealed, its
search space compiled; building a model from a resolved config; staged experiments' plans.

Imports :mod:`sweeps.config` and :mod:`sweeps.storage`.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.experiment._build import (
        BuildError,
        Built,
        build,
        derive_seed,
        load_data,
        make_average,
        make_model,
        make_optimizer,
        make_schedule,
        n_threads,
        train,
        trial_seed,
    )
    from sweeps.experiment._experiment import Experiment, PreparedData, check_builds, compile_experiment, prepare
    from sweeps.experiment._seal import seal_test, unseal
    from sweeps.experiment._stage_plan import (
        STAGE_KEYS,
        Stage,
        narrowed,
        parse_stages,
        stage_experiment,
        stage_row,
        stage_table,
        translated_lr,
    )
    from sweeps.experiment._threads import SMALL_MODEL_PARAMETERS, available_cores, choose_threads

__all__ = [
    "BuildError",
    "Built",
    "Experiment",
    "PreparedData",
    "SMALL_MODEL_PARAMETERS",
    "STAGE_KEYS",
    "Stage",
    "available_cores",
    "build",
    "check_builds",
    "choose_threads",
    "compile_experiment",
    "derive_seed",
    "load_data",
    "make_average",
    "make_model",
    "make_optimizer",
    "make_schedule",
    "n_threads",
    "narrowed",
    "parse_stages",
    "prepare",
    "seal_test",
    "stage_experiment",
    "stage_row",
    "stage_table",
    "train",
    "translated_lr",
    "trial_seed",
    "unseal",
]

_HOMES = {
    "BuildError": "sweeps.experiment._build",
    "Built": "sweeps.experiment._build",
    "Experiment": "sweeps.experiment._experiment",
    "PreparedData": "sweeps.experiment._experiment",
    "SMALL_MODEL_PARAMETERS": "sweeps.experiment._threads",
    "STAGE_KEYS": "sweeps.experiment._stage_plan",
    "Stage": "sweeps.experiment._stage_plan",
    "available_cores": "sweeps.experiment._threads",
    "build": "sweeps.experiment._build",
    "check_builds": "sweeps.experiment._experiment",
    "choose_threads": "sweeps.experiment._threads",
    "compile_experiment": "sweeps.experiment._experiment",
    "derive_seed": "sweeps.experiment._build",
    "load_data": "sweeps.experiment._build",
    "make_average": "sweeps.experiment._build",
    "make_model": "sweeps.experiment._build",
    "make_optimizer": "sweeps.experiment._build",
    "make_schedule": "sweeps.experiment._build",
    "n_threads": "sweeps.experiment._build",
    "narrowed": "sweeps.experiment._stage_plan",
    "parse_stages": "sweeps.experiment._stage_plan",
    "prepare": "sweeps.experiment._experiment",
    "seal_test": "sweeps.experiment._seal",
    "stage_experiment": "sweeps.experiment._stage_plan",
    "stage_row": "sweeps.experiment._stage_plan",
    "stage_table": "sweeps.experiment._stage_plan",
    "train": "sweeps.experiment._build",
    "translated_lr": "sweeps.experiment._stage_plan",
    "trial_seed": "sweeps.experiment._build",
    "unseal": "sweeps.experiment._seal",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
