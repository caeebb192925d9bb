"""Storages: storage strings (validation, masking, opening) and the journal file's heartbeats.

The lowest layer of ``sweeps``: it imports no other sub-package.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
