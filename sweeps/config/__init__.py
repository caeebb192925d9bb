"""Configuration: Hydra composition (once per run), the schemas of the driver's own nodes, the search
space, the stage spec and the folders a sweep writes to.

Imports :mod:`sweeps.storage` only.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
