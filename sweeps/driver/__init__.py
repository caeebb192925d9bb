"""The sweep: the trial loop, worker processes, the driver, staged sweeps, exports, the Hydra
application behind ``python -m sweeps`` and what Hydra keeps of a run.

The top layer: it imports every other sub-package, and none imports it.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
