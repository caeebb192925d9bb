"""The test split as a sealed object (PRACTICES.md section 1): fingerprinted, checked for leakage,
and turned into tensors only by whoever holds its key.

The real boundary is structural: trial code is handed a :class:`~practices.data.TrainVal` and
nothing else. :class:`SealedTest` is the second belt: code that gets hold of it by accident still
cannot read its samples without the key its sealer kept.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch

__all__ = ["Duplicates", "SealedError", "SealedTest", "find_duplicates", "split_fingerprint"]


def _rows(X: np.ndarray) -> np.ndarray:
    """One opaque byte string per sample, so that samples compare and sort as wholes."""
    flat = np.ascontiguousarray(X.reshape(len(X), -1) + 0)  # + 0 turns -0.0 into 0.0: equal values, equal bytes
    return flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel()


def split_fingerprint(X: np.ndarray, y: np.ndarray, indices: np.ndarray) -> str:
    """A SHA-256 hex digest of a split: its sample indices, the samples' content and labels.

    It changes when any sample of the split changes, when the split takes other samples, or when
    a sample's shape or dtype changes; samples outside the split do not enter it.
    """
    index = np.ascontiguousarray(indices, dtype=np.int64)
    digest = hashlib.sha256()
    digest.update(repr((X.shape[1:], str(X.dtype), str(y.dtype), len(index))).encode())
    digest.update(index.tobytes())
    digest.update(np.ascontiguousarray(X[index]).tobytes())
    digest.update(np.ascontiguousarray(y[index]).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Duplicates:
    """Test samples whose features exactly equal those of some training or validation sample.

    Attributes:
        test_indices: sorted indices (into the full data) of the duplicated test samples.
    """

    test_indices: np.ndarray

    @property
    def count(self) -> int:
        return len(self.test_indices)


def find_duplicates(X: np.ndarray, test: np.ndarray, others: np.ndarray) -> Duplicates:
    """Finds test samples that also occur, byte for byte, among ``others`` (train and validation).

    A duplicated sample leaks: the model was tuned on it, so the test score overestimates.
    """
    rows = _rows(X)
    shared = np.isin(rows[test], rows[others])
    return Duplicates(np.sort(np.asarray(test)[shared]))


class SealedError(PermissionError):
    """Someone without the sealer's key asked a :class:`SealedTest` for its samples."""


class SealedTest:
    """The test split, held as numpy arrays; no tensor of it exists until :meth:`tensors`.

    Args:
        X: the test samples.
        y: their labels.
        indices: their indices in the full data.
        fingerprint: :func:`split_fingerprint` of the split.
        key: any object; :meth:`tensors` answers only to this very object.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, indices: np.ndarray, fingerprint: str, key: object) -> None:
        self.__X, self.__y, self.__key = X, y, key
        self.indices = np.asarray(indices)
        self.fingerprint = fingerprint

    @property
    def n_samples(self) -> int:
        return len(self.indices)

    def tensors(self, key: object) -> tuple[torch.Tensor, torch.Tensor]:
        """The test samples and labels as tensors.

        Raises:
            SealedError: ``key`` is not the key the split was sealed with.
        """
        if key is not self.__key:
            raise SealedError(
                "the test split is sealed: only the vault opens it, once, after tuning "
                "(python -m sweeps.vault open); trial code sees train and validation only"
            )
        return torch.from_numpy(self.__X.copy()), torch.from_numpy(self.__y.copy())

    def __repr__(self) -> str:
        return f"SealedTest(n_samples={self.n_samples}, fingerprint={self.fingerprint[:16]})"
