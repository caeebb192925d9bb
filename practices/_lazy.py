"""Lazy re-exports for the packages' ``__init__`` files (PEP 562), of ``practices`` and of ``sweeps``
(``sweeps/_lazy.py`` passes these on): a public name imports its module on first use, so that
importing one module of a package (the plot renderer's; the torch-free :mod:`practices.options` that
sweeps' config check reads; ``python -m sweeps --help``) imports no other, and no ``__init__`` can make
an import cycle."""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "module_exports"]


def module_exports(folder: Path) -> dict[str, list[str]]:
    """Module name -> its literal ``__all__``, for the private modules (``_*.py``) in ``folder``, read
    from their source without importing them; ``__main__`` (an entry point) is left out."""
    exports = {}
    for path in sorted(folder.glob("_*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                exports[path.stem] = list(ast.literal_eval(node.value))
    return exports


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]] | Iterable[str], namespace: dict[str, Any],
    renamed: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``__all__`` is answered by ``__getattr__``.

    Args:
        package: the package's ``__name__``.
        exports: module (relative to ``package``) -> the public names it defines; or the package's
            ``__path__``, to re-export every private module's ``__all__`` (:func:`module_exports`).
        namespace: the package's ``globals()``, where a loaded name is kept.
        renamed: old name -> current name, for names that still import after a rename.
    """
    renamed = dict(renamed or {})

    @functools.cache
    def homes() -> dict[str, str]:
        found = exports if isinstance(exports, Mapping) else module_exports(Path(next(iter(exports))))
        return {name: f"{package}.{module}" for module, names in found.items() for name in names}

    def getattr_(name: str) -> Any:
        if name == "__all__":
            value: Any = sorted(homes())
        else:
            current = renamed.get(name, name)
            if current not in homes():
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(homes()[current]), current)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *homes()])

    return getattr_, dir_
