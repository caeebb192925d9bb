"""The training practices of ../shared/PRACTICES.md as a plain PyTorch library.

It imports neither Optuna nor Hydra: the sweep driver in ``sweeps`` builds on it. The names below load
on first use (``practices/_lazy.py``): importing one module, such as the torch-free
:mod:`practices.options`, imports no other.
"""

from practices._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "averaging": ["WeightAverage"],
    "data": ["Split", "TrainVal", "as_arrays", "load_digits", "load_table", "split_indices", "train_val"],
    "models": ["CNN", "MLP"],
    "monitor": ["Diagnosis", "Diverged", "LayerStats", "Monitor", "Thresholds"],
    "sealed": ["Duplicates", "SealedError", "SealedTest", "find_duplicates", "split_fingerprint"],
    "train": ["Callback", "EpochStats", "FitResult", "NonFiniteLossError", "evaluate", "fit", "resolve_device"],
}, globals())

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
