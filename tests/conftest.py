import os

import pytest


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs the test inside a fresh temporary working directory (sweeps.db, exports/ land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _quiet_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
