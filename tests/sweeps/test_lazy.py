"""Lazy re-exports of the packages' ``__init__`` files (sweeps/_lazy.py)."""

import importlib
import subprocess
import sys

import pytest

from sweeps._lazy import lazy_exports, module_exports
from tests.helpers import subprocess_env

SUB_PACKAGES = ["storage", "config", "experiment", "study", "trial", "vault", "driver"]


def _package(tmp_path, monkeypatch):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        "from sweeps._lazy import lazy_exports\n"
        "__getattr__, __dir__ = lazy_exports(__name__, __path__, globals(), renamed={'old': 'new'})\n")
    (folder / "_a.py").write_text("__all__ = ['new', 'other']\nnew = 1\nother = 2\nhidden = 3\n")
    (folder / "_b.py").write_text("import sys\nsys.modules['pkg']._b_imported = True\n__all__ = ['b']\nb = 4\n")
    (folder / "__main__.py").write_text("__all__ = ['main']\nraise SystemExit('never imported')\n")
    (folder / "c.py").write_text("__all__ = ['c']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return folder


def test_lazy_module_exports_reads_private_modules_without_importing_them(tmp_path, monkeypatch):
    assert module_exports(_package(tmp_path, monkeypatch)) == {"_a": ["new", "other"], "_b": ["b"]}
    assert "pkg" not in sys.modules


def test_lazy_exports_load_a_module_on_first_use_only(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch)
    monkeypatch.delitem(sys.modules, "pkg", raising=False)
    pkg = importlib.import_module("pkg")
    try:
        assert pkg.__all__ == ["b", "new", "other"]
        assert pkg.new == 1 and pkg.old == 1 and pkg.other == 2
        assert not hasattr(pkg, "_b_imported")
        assert pkg.b == 4 and pkg._b_imported
        with pytest.raises(AttributeError, match="has no attribute 'hidden'"):
            pkg.hidden
        assert {"b", "new", "other"} <= set(dir(pkg))
    finally:
        for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
            del sys.modules[name]


def test_lazy_exports_of_an_explicit_mapping():
    namespace = {}
    getattr_, _ = lazy_exports("sweeps", {"_errors": ["ConfigError"]}, namespace)
    assert getattr_("__all__") == ["ConfigError"]
    assert getattr_("ConfigError").__name__ == "ConfigError" and "ConfigError" in namespace


@pytest.mark.parametrize("package", SUB_PACKAGES)
def test_lazy_every_sub_package_name_resolves(package):
    module = importlib.import_module(f"sweeps.{package}")
    assert module.__all__ and all(getattr(module, name) is not None for name in module.__all__)


def test_lazy_the_plot_renderers_module_imports_neither_torch_nor_optuna():
    code = "import sys, sweeps.trial._plots; print(sorted({'torch', 'optuna'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"
