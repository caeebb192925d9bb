"""Datasets and deterministic, stratified train/validation/test splits.

Small datasets live in memory as tensors and are batched by index slicing: on data the size of
scikit-learn's digits a DataLoader costs more than the training itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split

__all__ = ["Split", "TrainVal", "load_digits", "load_table", "split_indices", "as_arrays", "standardize", "train_val"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as images scaled to [0, 1].

    Returns:
        ``X`` of shape ``(1797, 1, 8, 8)`` (float32) and ``y`` of shape ``(1797,)`` (int64).
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    X = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return X, bunch.target.astype(np.int64)


def standardize(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``X`` with each feature shifted and scaled by the mean and standard deviation of the training
    rows ``train`` only, so that nothing computed from validation or test samples reaches training.

    A feature that is constant on the training rows is only shifted (its scale would be zero).

    Args:
        X: samples, one row each (any trailing shape: every element is a feature).
        train: indices of the training rows.

    Returns:
        A float32 array of ``X``'s shape.
    """
    rows = X[train].astype(np.float64)
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((X - mean) / std).astype(np.float32)


def load_table(path: str, label: str, features: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A CSV or Parquet table read with pandas.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        label: the column holding the class labels (any hashable values; mapped to 0..C-1 in
            sorted order).
        features: the feature columns; ``None`` takes every column except ``label``.

    Returns:
        ``X`` (float32, one row per sample) and ``y`` (int64 class indices).
    """
    import pandas as pd

    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"data.path: no file at {str(file)!r}")
    frame = pd.read_parquet(file) if file.suffix in {".parquet", ".pq"} else pd.read_csv(file)
    if label not in frame.columns:
        raise ValueError(f"data.label: column {label!r} not in {path}; columns are {list(frame.columns)}")
    columns = list(features) if features else [c for c in frame.columns if c != label]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"data.features: columns {missing} not in {path}; columns are {list(frame.columns)}")
    codes, _ = pd.factorize(frame[label], sort=True)
    return frame[columns].to_numpy(dtype=np.float32), codes.astype(np.int64)


def as_arrays(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Checks a loader's ``(X, y)`` and returns them as numpy arrays (float32, int64)."""
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"data: expected X of shape (N, ...) and y of shape (N,), got {X.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"data: y must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"data: class labels must be >= 0, got {int(y.min())}")
    return X.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


@dataclasses.dataclass(frozen=True)
class Split:
    """Sample indices of the three splits, each sorted."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(y: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Cuts train / validation / test indices, stratified by class and deterministic in ``seed``."""
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed + 1)
    return Split(np.sort(train), np.sort(val), np.sort(test))


@dataclasses.dataclass
class TrainVal:
    """The training and validation splits as tensors: all that trial code ever gets."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def to(self, device: torch.device | str) -> "TrainVal":
        """A copy on ``device``; called once per trial, never per batch."""
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return TrainVal(move(self.X_train), move(self.y_train), move(self.X_val), move(self.y_val), self.n_classes)


def train_val(X: np.ndarray, y: np.ndarray, split: Split) -> TrainVal:
    """Tensors of the training and validation samples; the test samples are left out."""
    n_classes = int(y.max()) + 1
    pick = lambda idx: (torch.from_numpy(X[idx].copy()), torch.from_numpy(y[idx].copy()))  # noqa: E731
    X_train, y_train = pick(split.train)
    X_val, y_val = pick(split.val)
    return TrainVal(X_train, y_train, X_val, y_val, n_classes)
