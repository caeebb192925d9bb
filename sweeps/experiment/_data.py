"""An experiment's data as the driver holds it: loaded through the config's ``data`` node, split
(stratified), standardized on the training split where asked, and its test split sealed."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from practices.data import Split, TrainVal, as_arrays, split_indices, standardize
from practices.sealed import Duplicates, SealedTest
from sweeps._errors import ConfigError
from sweeps.experiment._seal import seal_test

__all__ = ["PreparedData", "load_data"]


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """An experiment's data as the driver holds it: the training and validation samples, and the sealed
    test split (not a ``torch.utils.data.Dataset``; trials get :meth:`train_val`).

    Only :meth:`train_val` is ever handed to trial code. The test samples sit in ``sealed``, a
    :class:`~practices.sealed.SealedTest` that only the test vault (``sweeps/vault/``) opens (README, "The test vault").
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    sealed: SealedTest
    duplicates: Duplicates
    n_dropped: int = 0

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def train_val(self) -> TrainVal:
        """Tensors of the training and validation samples, the test samples left out."""
        tensor = lambda a: torch.from_numpy(a.copy())  # noqa: E731
        return TrainVal(tensor(self.X_train), tensor(self.y_train), tensor(self.X_val), tensor(self.y_val),
                        self.n_classes)


def load_data(cfg: DictConfig) -> PreparedData:
    """Loads the data and cuts the split; errors in the data config become ConfigError.

    Raises:
        ConfigError: the loader failed, the labels hold fewer than 2 classes or skip one, or
            ``split.*`` leaves a split without a sample of some class.
    """
    X, y = _load_arrays(cfg)
    split = _split(y, cfg.split)
    if _standardizes(cfg):
        X = standardize(X, split.train)  # before sealing: the test split is evaluated as trials see data
    drop = bool(OmegaConf.select(cfg, "vault.drop_duplicates", default=False))
    sealed, duplicates, n_dropped = seal_test(X, y, split, drop_duplicates=drop)
    n_classes = int(y.max()) + 1
    return PreparedData(X[split.train], y[split.train], X[split.val], y[split.val], n_classes, sealed,
                         duplicates, n_dropped)


def _standardizes(cfg: DictConfig) -> bool:
    """``data.standardize`` (false where the data node has none).

    Raises:
        ConfigError: it is not a boolean.
    """
    value = cfg.data.get("standardize", False)
    if not isinstance(value, bool):
        raise ConfigError(f"data.standardize must be true or false, got {value!r}")
    return value


def _load_arrays(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    target = OmegaConf.select(cfg, "data._target_")
    _standardizes(cfg)
    node = copy.deepcopy(cfg.data)  # keeps its parent: interpolations still resolve
    with open_dict(node):
        node.pop("standardize", None)  # applied after the split, not a loader argument
    try:
        X, y = as_arrays(*instantiate(node))
    except ConfigError:
        raise
    except Exception as exc:  # a user's loader can fail in any way; name where
        cause = exc.__cause__ or exc  # Hydra wraps the target's own error
        raise ConfigError(f"data ({target}): {type(cause).__name__}: {cause}") from None
    n_classes = int(y.max()) + 1 if len(y) else 0
    counts = np.bincount(y, minlength=n_classes)
    if np.count_nonzero(counts) < 2:
        raise ConfigError(f"data ({target}): the labels hold {np.count_nonzero(counts)} class(es); a classifier needs "
                          "at least 2 classes, each with at least 3 samples (one per split)")
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ConfigError(f"data ({target}): class labels must be 0..{n_classes - 1} with every class present; no "
                          f"sample has label {missing[:10].tolist()}")
    if counts.min() < 3:
        raise ConfigError(f"data ({target}): class {int(counts.argmin())} has {int(counts.min())} sample(s); "
                          "each class needs at least 3, one for each of the train, validation and test splits")
    return X, y


def _at_least(value: float) -> float:
    """``value`` rounded up to two significant digits, for a bound to suggest."""
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / scale) * scale


def _split(y: np.ndarray, split_cfg: DictConfig) -> Split:
    """The stratified split, refused where some split would miss a class."""
    n, n_classes = len(y), int(y.max()) + 1
    val_fraction, test_fraction = split_cfg.val_fraction, split_cfg.test_fraction
    # scikit-learn's sizes for a float test_size: ceil for the held-out part.
    n_test = math.ceil(test_fraction * n)
    n_rest = n - n_test
    n_val = math.ceil(val_fraction / (1.0 - test_fraction) * n_rest)
    sizes = (("split.test_fraction", test_fraction, n_test, n_classes / n),
             ("split.val_fraction", val_fraction, n_val, n_classes * (1 - test_fraction) / max(n_rest, 1)))
    for key, value, size, low in sizes:
        if size < n_classes:
            raise ConfigError(f"{key}={value} gives {size} of {n} samples for {n_classes} classes; each split needs at "
                              f"least one sample per class: use {key} >= {_at_least(low):g}")
    if n_rest - n_val < n_classes:
        raise ConfigError(f"split.val_fraction + split.test_fraction = {val_fraction + test_fraction:g} leaves "
                          f"{n_rest - n_val} of {n} samples for training, fewer than the {n_classes} classes; "
                          "lower them")
    try:
        split = split_indices(y, val_fraction=val_fraction, test_fraction=test_fraction, seed=split_cfg.seed)
    except ValueError as exc:  # scikit-learn's own conditions on stratification
        raise ConfigError(f"split (val_fraction={val_fraction}, test_fraction={test_fraction}, seed={split_cfg.seed}) "
                          f"cannot be cut: {exc}") from None
    for name, key, index in (("validation", "split.val_fraction", split.val),
                             ("test", "split.test_fraction", split.test),
                             ("train", "split.val_fraction + split.test_fraction", split.train)):
        absent = sorted(set(range(n_classes)) - set(np.unique(y[index]).tolist()))
        if absent:
            hint = "lower" if name == "train" else "raise"
            raise ConfigError(f"{key}: the {name} split holds no sample of class {absent[:10]}; each split needs at "
                              f"least one sample per class: {hint} {key} (now {val_fraction}, {test_fraction})")
    return split
