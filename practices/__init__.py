"""The training practices of ../shared/PRACTICES.md as a plain PyTorch library.

It imports neither Optuna nor Hydra: the sweep driver in ``sweeps`` builds on it.
"""

from practices.averaging import WeightAverage
from practices.data import Split, TrainVal, as_arrays, load_digits, load_table, split_indices, train_val
from practices.models import CNN, MLP
from practices.monitor import Diagnosis, Diverged, LayerStats, Monitor, Thresholds
from practices.sealed import Duplicates, SealedError, SealedTest, find_duplicates, split_fingerprint
from practices.train import Callback, EpochStats, FitResult, NonFiniteLossError, evaluate, fit, resolve_device

__all__ = [
    "CNN",
    "Callback",
    "Diagnosis",
    "Diverged",
    "Duplicates",
    "EpochStats",
    "FitResult",
    "LayerStats",
    "MLP",
    "Monitor",
    "NonFiniteLossError",
    "SealedError",
    "SealedTest",
    "Split",
    "Thresholds",
    "TrainVal",
    "WeightAverage",
    "as_arrays",
    "evaluate",
    "find_duplicates",
    "fit",
    "load_digits",
    "load_table",
    "resolve_device",
    "split_fingerprint",
    "split_indices",
    "train_val",
]
