"""A training monitor: watches the loss curves, gradients, weights and activations while
:func:`practices.train.fit` runs, stops diverging runs, stops early, and keeps checkpoints.

Section 3 of PRACTICES.md as code, one concept per module:

- ``_record`` / ``_recording``: the :class:`Record` of a run (per-epoch numbers, every step's loss, and
  on sampled steps the global and per-layer gradient norms, per-layer update ratios ``|dW| / |W|``,
  dead ReLU and saturated tanh/sigmoid fractions), and the recorder that measures them;
- ``_divergence``: the guard that raises :class:`Diverged` on non-finite values or a blow-up;
- ``_stopping``: early stopping on the validation metric, with best-epoch and last checkpoints;
- ``_diagnoses``: nine pure functions of a record (:data:`DIAGNOSES`, :func:`diagnose`), each a
  :class:`Diagnosis` with the numbers behind it and the advice of PRACTICES.md;
- ``_monitor``: :class:`Monitor`, the callback that wires them together.
"""

from practices._lazy import lazy_exports

# Loaded on first use: the torch-free Thresholds (what sweeps' config check reads) imports no torch.
__getattr__, __dir__ = lazy_exports(__name__, {
    "_diagnoses": ["DIAGNOSES", "diagnose"],
    "_diagnosis": ["Diagnosis"],
    "_divergence": ["Diverged", "DivergenceGuard"],
    "_monitor": ["Monitor"],
    "_record": ["LayerStats", "Record"],
    "_recording": ["Recorder", "Sample"],
    "_stopping": ["CHECKPOINT_POLICIES", "EarlyStopping"],
    "_thresholds": ["Thresholds"],
}, globals())

__all__ = [
    "CHECKPOINT_POLICIES",
    "DIAGNOSES",
    "Diagnosis",
    "Diverged",
    "DivergenceGuard",
    "EarlyStopping",
    "LayerStats",
    "Monitor",
    "Record",
    "Recorder",
    "Sample",
    "Thresholds",
    "diagnose",
]
