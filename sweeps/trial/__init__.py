"""One trial: its objective, preflight checks, monitor, heartbeat, progress line and training report
(note, plots drawn by a renderer process, checkpoints).

Imports the layers below: :mod:`sweeps.study` and lower.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
