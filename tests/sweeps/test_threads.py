"""The default torch thread count: never more than a worker's share of the cores; small models get one."""

import pytest
from omegaconf import OmegaConf
from torch import nn

from sweeps.experiment._build import n_threads
from sweeps.experiment._threads import SMALL_MODEL_PARAMETERS, available_cores, choose_threads

BIG = 10 * SMALL_MODEL_PARAMETERS


@pytest.mark.parametrize("n_cores, n_workers, n_parameters, expected", [
    (2, 2, BIG, 1),                         # one core per worker
    (2, 1, 20_000, 1),                      # a small model on a free machine: still one
    (2, 1, BIG, 2),
    (16, 1, BIG, 16),                       # a big model gets the cores
    (16, 4, BIG, 4),                        # shared among the workers
    (16, 3, BIG, 5),
    (3, 8, BIG, 1),                         # more workers than cores: never 0
    (16, 1, SMALL_MODEL_PARAMETERS - 1, 1),
    (16, 1, SMALL_MODEL_PARAMETERS, 16),
    (8, 2, None, 4),                        # model not known yet: the worker's share
])
def test_threads_choose_from_cores_workers_and_model_size(n_cores, n_workers, n_parameters, expected):
    assert choose_threads(n_cores, n_workers, n_parameters) == expected


def test_threads_never_exceed_a_workers_share_of_the_cores():
    for n_cores in range(1, 33):
        for n_workers in range(1, 9):
            threads = choose_threads(n_cores, n_workers, BIG)
            assert 1 <= threads and (threads * n_workers <= n_cores or threads == 1)


def test_threads_reject_zero_cores_or_workers():
    with pytest.raises(ValueError, match="n_cores and n_workers must be >= 1, got 0 and 1"):
        choose_threads(0, 1, None)


def test_threads_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert available_cores() == 3


def test_threads_config_value_wins_and_null_chooses(monkeypatch):
    monkeypatch.setattr("sweeps.experiment._build.available_cores", lambda: 8)
    big = nn.Linear(1000, 2000)  # 2M parameters
    cfg = OmegaConf.create({"trainer": {"num_threads": None}, "sweep": {"n_workers": 2}})
    assert n_threads(cfg, big) == 4
    assert n_threads(cfg, nn.Linear(10, 10)) == 1
    cfg.trainer.num_threads = 3
    assert n_threads(cfg, nn.Linear(10, 10)) == 3
    assert n_threads(OmegaConf.create({"trainer": {"num_threads": None}}), big) == 8  # sweeps.train: no sweep node
