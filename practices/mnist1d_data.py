"""MNIST-1D (Greydanus 2020): ten 1-D digit templates, padded, scaled, sheared, translated and noised
into 40-sample signals. A small data set on which architectures and training settings still differ.

The samples come from the ``mnist1d`` package's own generator (``mnist1d.data.make_dataset``), never
from its URL loader: nothing is downloaded and nothing is written. The package is an optional extra:
``pip install 'sweeps[mnist1d]'``. Generating 6000 samples takes 2-3 s of CPU; a process keeps the last
few data sets it generated (a multirun, the benchmark harness and the tests load the same one many times).
"""

from __future__ import annotations

import functools
import random

import numpy as np

__all__ = ["load_mnist1d"]

MISSING = "data=mnist1d needs the mnist1d package: pip install 'sweeps[mnist1d]' (or pip install mnist1d)"


def load_mnist1d(num_samples: int = 5000, seed: int = 42, final_seq_length: int = 40,
                 shuffle_seq: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Generates MNIST-1D with the package's generator.

    The package's defaults (5000 samples, seed 42) are the data set of the paper; its own 80/20
    train/test cut is not used: the samples are returned in the generator's order and sweeps cuts
    its stratified train/validation/test split from them (``split.*``).

    Args:
        num_samples: samples in all, an equal number per class (``num_samples // 10`` each).
        seed: the generator's seed; the same seed gives the same samples.
        final_seq_length: length of each signal.
        shuffle_seq: permute the positions of every signal the same way (the paper's check that a
            model uses spatial structure).

    Returns:
        ``X`` of shape ``(N, 1, final_seq_length)`` (float32, one channel for 1-D convolutions) and
        ``y`` of shape ``(N,)`` (int64, 0..9).

    Raises:
        ModuleNotFoundError: the ``mnist1d`` package is not installed.
        ValueError: ``num_samples`` gives fewer than one sample per class.
    """
    if num_samples < 10:
        raise ValueError(f"data.num_samples must be >= 10 (one per class), got {num_samples}")
    try:  # before the kept data sets: without the package, the data option is refused every time
        import mnist1d.data  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError(MISSING) from None
    X, y = _generate(int(num_samples), int(seed), int(final_seq_length), bool(shuffle_seq))
    return X.copy(), y.copy()  # the caller's to change; the kept ones stay as generated


@functools.lru_cache(maxsize=4)
def _generate(num_samples: int, seed: int, final_seq_length: int, shuffle_seq: bool) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    args.final_seq_length, args.shuffle_seq = final_seq_length, shuffle_seq
    # The generator seeds numpy's and Python's global generators: leave them as they were.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        dataset = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    X = np.concatenate([dataset["x"], dataset["x_test"]]).astype(np.float32)[:, None, :]
    y = np.concatenate([dataset["y"], dataset["y_test"]]).astype(np.int64)
    return X, y
