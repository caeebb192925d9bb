"""MNIST-1D from the mnist1d package's generator: shapes, classes, determinism, no side effects."""

import importlib.util
import random
import sys

import numpy as np
import pytest

from practices.mnist1d_data import _generate, load_mnist1d

needs_mnist1d = pytest.mark.skipif(importlib.util.find_spec("mnist1d") is None,
                                   reason="the mnist1d extra is not installed (pip install -e '.[mnist1d]')")


@pytest.fixture(scope="module")
def small():
    return load_mnist1d(num_samples=200, seed=3)


@needs_mnist1d
def test_load_mnist1d_gives_one_channel_signals_and_ten_balanced_classes(small):
    X, y = small
    assert X.shape == (200, 1, 40) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [20] * 10)
    assert abs(float(X.mean())) < 1e-3 and float(X.std()) == pytest.approx(1.0, abs=1e-3)  # the generator's scaling


@needs_mnist1d
def test_load_mnist1d_is_deterministic_in_its_seed(small):
    X, y = small
    _generate.cache_clear()  # generated again, not the kept copy
    X_again, y_again = load_mnist1d(num_samples=200, seed=3)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    X_other, _ = load_mnist1d(num_samples=200, seed=4)
    assert not np.array_equal(X, X_other)


@needs_mnist1d
def test_load_mnist1d_takes_the_signal_length():
    X, _ = load_mnist1d(num_samples=20, seed=0, final_seq_length=30)
    assert X.shape == (20, 1, 30)


@needs_mnist1d
def test_load_mnist1d_leaves_the_global_generators_as_they_were():
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    load_mnist1d(num_samples=20, seed=0)
    assert (np.random.random(), random.random()) == expected


def test_load_mnist1d_names_the_extra_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'sweeps\[mnist1d\]'"):
        load_mnist1d(num_samples=20)


def test_load_mnist1d_refuses_fewer_samples_than_classes():
    with pytest.raises(ValueError, match="data.num_samples must be >= 10"):
        load_mnist1d(num_samples=5)


@needs_mnist1d
def test_load_mnist1d_generates_a_data_set_once_per_process_and_hands_out_copies(monkeypatch):
    import mnist1d.data

    _generate.cache_clear()
    calls = []
    make = mnist1d.data.make_dataset
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: calls.append(args.seed) or make(args))
    X, y = load_mnist1d(num_samples=100, seed=5)
    X[:] = 0.0  # the caller's copy
    y[:] = 0
    X_again, y_again = load_mnist1d(num_samples=100, seed=5)
    assert calls == [5]
    assert float(np.abs(X_again).sum()) > 0 and len(set(y_again.tolist())) == 10
    load_mnist1d(num_samples=100, seed=6)
    assert calls == [5, 6]
