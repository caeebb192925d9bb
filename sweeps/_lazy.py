"""The packages' lazy re-exports (PEP 562): :mod:`practices._lazy`'s, which ``practices`` needs too
and cannot import from here; ``sweeps``' sub-packages take them from this module."""

from practices._lazy import lazy_exports, module_exports

__all__ = ["lazy_exports", "module_exports"]
