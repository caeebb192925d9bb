"""The package as a wheel carries what it needs at run time: the config tree, found with importlib.resources.

The full check (a fresh virtual environment, the wheel's own dependencies, a 2-trial quickstart from
another folder) is too slow for the test suite: .ci/run does it.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sweeps._packaged import conf_dir, experiments

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; the package itself supports 3.10

ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_packaging_lists_every_config_group_folder_as_a_package():
    groups = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and list(p.glob("*.yaml")))
    packaged = sorted(p.removeprefix("sweeps.conf.") for p in _setuptools()["packages"] if p.startswith("sweeps.conf."))
    assert packaged == groups, "pyproject.toml [tool.setuptools] packages must list each conf/<group>/ folder"
    assert _setuptools()["package-dir"] == {"sweeps.conf": "conf"}


def test_packaging_lists_every_code_package():
    found = sorted(".".join(p.parent.relative_to(ROOT).parts) for top in ("sweeps", "practices")
                   for p in (ROOT / top).rglob("__init__.py"))
    listed = sorted(p for p in _setuptools()["packages"] if p != "sweeps.conf" and not p.startswith("sweeps.conf."))
    assert listed == found, "pyproject.toml [tool.setuptools] packages must list each package with an __init__.py"


def test_packaging_conf_dir_of_a_checkout_is_the_top_level_conf():
    assert conf_dir() == ROOT / "conf"
    assert {"quickstart", "digits_cnn", "digits_mlp", "digits_staged", "mnist1d_cnn", "wine"} <= set(experiments())


@pytest.mark.slow
def test_packaging_wheel_holds_the_config_tree_and_finds_it(tmp_path):
    # From a copy: setuptools builds in the source folder, and a stale build/ there could leak old files.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "outputs",
                                                                 "multirun", "exports", "*.db"))
    # --no-build-isolation: this environment's setuptools, no index needed (CI builds with isolation).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("sweeps-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"sweeps/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*")
                if p.is_file() and p.suffix in (".yaml", ".csv")}
    assert {"sweeps/conf/experiment/quickstart.yaml", "sweeps/conf/data/wine.csv"} <= names  # wine.csv: data
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "benchmarks/", "conf/")) for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "sweeps = sweeps.__main__:cli" in entry_points
    # Unpacked as pip installs it, the package finds its own copy of the tree, not the checkout's.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    found = subprocess.run([sys.executable, "-c", "from sweeps._packaged import conf_dir; print(conf_dir())"],
                           cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == site / "sweeps" / "conf"
