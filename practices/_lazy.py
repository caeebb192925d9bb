"""Lazy re-exports for the package ``__init__`` files (PEP 562): a public name imports its module on
first use, so that a caller who needs one torch-free module (a config validator reading
:mod:`practices.options`) does not pay for torch and scikit-learn, about 2 s."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: module (relative to ``package``) -> the public names it defines.
        namespace: the package's ``globals()``, where a loaded name is kept.
    """
    homes = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def getattr_(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *homes])

    return getattr_, dir_
