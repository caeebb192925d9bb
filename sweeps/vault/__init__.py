"""The test vault of a study: its state in the storage (``_state``), the one claim (``_claim``), the
opening (``_open``) and its note (``_note``).
``python -m sweeps.vault`` is its command line (``__main__``, an entry point: never imported here).

Imports the layers below: :mod:`sweeps.trial` and lower.

Re-exports the ``__all__`` of every module here, each loaded on first use (``sweeps/_lazy.py``).
"""

from sweeps._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, __path__, globals())
