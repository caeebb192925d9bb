"""A study in its storage: creation and metadata, machine records, trial accounting, ``trials.csv``,
and seed-robust selection with its statistics.

Imports the layers below: :mod:`sweeps.experiment`, :mod:`sweeps.config`, :mod:`sweeps.storage`.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
