"""Sealing the test split when an experiment is prepared (PRACTICES.md section 1, docs/vault.md).

The key of every :class:`~practices.sealed.SealedTest` this process seals lives here, private; the
test vault (``sweeps/vault/``) opens the split through :func:`unseal`, once, for the winner.
"""

from __future__ import annotations

import numpy as np
import torch

from practices.data import Split
from practices.sealed import Duplicates, SealedTest, find_duplicates, split_fingerprint
from sweeps._errors import ConfigError

__all__ = ["seal_test", "unseal"]

_KEY = object()


def seal_test(
    X: np.ndarray, y: np.ndarray, split: Split, *, drop_duplicates: bool
) -> tuple[SealedTest, Duplicates, int]:
    """Seals the test split of ``split``: ``(sealed test split, duplicates found, number dropped)``.

    Raises:
        ConfigError: ``drop_duplicates`` would leave no test sample.
    """
    duplicates = find_duplicates(X, split.test, np.concatenate([split.train, split.val]))
    test = split.test
    if drop_duplicates and duplicates.count:
        test = np.setdiff1d(split.test, duplicates.test_indices)
    if len(test) == 0:
        raise ConfigError(f"vault.drop_duplicates=true drops all {len(split.test)} test samples: every one also "
                          "occurs in train/validation; fix the data or set vault.drop_duplicates=false")
    sealed = SealedTest(X[test], y[test], test, split_fingerprint(X, y, test), _KEY)
    return sealed, duplicates, len(split.test) - len(test)


def unseal(sealed: SealedTest) -> tuple[torch.Tensor, torch.Tensor]:
    """The test samples and labels of ``sealed``: for the vault's opening only (``sweeps/vault/_open.py``)."""
    return sealed.tensors(_KEY)
