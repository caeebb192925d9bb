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
    from sweeps._experiment import Dataset, Experiment, prepare
    from sweeps._export import export_study
    from sweeps._space import SearchSpace, compile_space

__version__ = "0.1.0"
__all__ = ["ConfigError", "Dataset", "Experiment", "SearchSpace", "compile_space", "export_study", "prepare"]

_HOMES = {
    "ConfigError": "sweeps._errors",
    "Dataset": "sweeps._experiment",
    "Experiment": "sweeps._experiment",
    "prepare": "sweeps._experiment",
    "export_study": "sweeps._export",
    "SearchSpace": "sweeps._space",
    "compile_space": "sweeps._space",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
