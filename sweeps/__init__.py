"""sweeps: hyperparameter and learning-rate-schedule sweeps for PyTorch that follow good training
practice (docs/practices.md), driven by Optuna over Hydra configs.

The public names below load on first use (``sweeps/_lazy.py``), so that ``python -m sweeps --help``,
which imports this package first, does not import torch, Optuna and Hydra.
"""

from sweeps._lazy import lazy_exports

__version__ = "0.1.0"
__getattr__, __dir__ = lazy_exports(__name__, {
    "_errors": ["ConfigError"],
    "experiment._experiment": ["Experiment", "prepare"],
    "experiment._data": ["PreparedData"],
    "driver._export": ["export_study"],
    "config._space": ["SearchSpace", "compile_space"],
}, globals(), renamed={"Dataset": "PreparedData"})  # Dataset: its name before it was told apart from torch's
