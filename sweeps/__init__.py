"""sweeps: hyperparameter and learning-rate-schedule sweeps for PyTorch that follow good training
practice (docs/practices.md), driven by Optuna over Hydra configs.

The public names below load on first use (PEP 562), so that ``python -m sweeps --help``, which imports
this package first, does not import torch, Optuna and Hydra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps._errors import ConfigError
    from sweeps.config._space import SearchSpace, compile_space
    from sweeps.driver._export import export_study
    from sweeps.experiment._experiment import Experiment, PreparedData, prepare

__version__ = "0.1.0"
__all__ = ["ConfigError", "Experiment", "PreparedData", "SearchSpace", "compile_space", "export_study", "prepare"]

_HOMES = {
    "ConfigError": "sweeps._errors",
    "PreparedData": "sweeps.experiment._experiment",
    "Experiment": "sweeps.experiment._experiment",
    "prepare": "sweeps.experiment._experiment",
    "export_study": "sweeps.driver._export",
    "SearchSpace": "sweeps.config._space",
    "compile_space": "sweeps.config._space",
}


# Old names that still import: ``Dataset`` was renamed, as it is no torch Dataset.
_RENAMED = {"Dataset": "PreparedData"}


def __getattr__(name: str) -> Any:
    name_now = _RENAMED.get(name, name)
    if name_now not in _HOMES:
        raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name_now]), name_now)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
