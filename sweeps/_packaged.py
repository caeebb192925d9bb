"""Files that ship with the package: the Hydra config tree.

The repository keeps the tree at its top level (``conf/``); a built wheel carries it as
``sweeps/conf/`` (pyproject.toml maps one onto the other). This module imports nothing heavy, so that
``python -m sweeps --help`` can list the experiments without loading Hydra or torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["conf_dir", "experiments"]


def conf_dir() -> Path:
    """The folder of ``config.yaml``: inside the installed package (a wheel), else the checkout's
    ``conf/`` beside the ``sweeps`` package (an editable install, or the checkout on ``PYTHONPATH``)."""
    packaged = resources.files("sweeps") / "conf"
    if packaged.is_dir() and (packaged / "config.yaml").is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "conf"


def experiments() -> list[str]:
    """The names of the experiments that ship with sweeps (``conf/experiment/*.yaml``), sorted."""
    return sorted(path.stem for path in (conf_dir() / "experiment").glob("*.yaml"))
