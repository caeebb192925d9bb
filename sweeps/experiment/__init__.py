"""An experiment ready to run: composed, validated, its data split and its test split sealed, its
search space compiled; building a model from a resolved config; staged experiments' plans.

Imports :mod:`sweeps.config` and :mod:`sweeps.storage`.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
