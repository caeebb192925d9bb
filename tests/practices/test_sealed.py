import numpy as np
import pytest
import torch

from practices.data import load_digits, split_indices
from practices.sealed import SealedError, SealedTest, find_duplicates, split_fingerprint


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return X, y, split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)


def test_split_fingerprint_is_deterministic_and_changes_with_one_test_sample(digits):
    X, y, split = digits
    again = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)
    sealed = split_fingerprint(X, y, split.test)
    assert split_fingerprint(X.copy(), y.copy(), again.test) == sealed and len(sealed) == 64
    changed = X.copy()
    changed[split.test[17], 0, 3, 4] += 1.0 / 16
    assert split_fingerprint(changed, y, split.test) != sealed
    relabelled = y.copy()
    relabelled[split.test[5]] = (relabelled[split.test[5]] + 1) % 10
    assert split_fingerprint(X, relabelled, split.test) != sealed
    outside = X.copy()
    outside[split.train[0]] += 1.0
    assert split_fingerprint(outside, y, split.test) == sealed, "only the test split's samples enter it"
    other = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert split_fingerprint(X, y, other.test) != sealed


def test_find_duplicates_counts_samples_planted_across_splits(digits):
    X, y, split = digits
    assert find_duplicates(X, split.test, np.concatenate([split.train, split.val])).count == 0
    planted = X.copy()
    planted[split.test[[2, 40, 99]]] = planted[split.train[[0, 1, 2]]]
    planted[split.test[7]] = planted[split.val[3]]
    planted[split.val[4]] = 0.0
    planted[split.test[8]] = -0.0  # the same blank image, written with negative zeros
    found = find_duplicates(planted, split.test, np.concatenate([split.train, split.val]))
    assert found.count == 5
    np.testing.assert_array_equal(found.test_indices, np.sort(split.test[[2, 7, 8, 40, 99]]))


def test_sealed_test_opens_only_with_its_key(digits):
    X, y, split = digits
    key = object()
    sealed = SealedTest(X[split.test], y[split.test], split.test, split_fingerprint(X, y, split.test), key)
    assert sealed.n_samples == len(split.test)
    with pytest.raises(SealedError, match="the test split is sealed"):
        sealed.tensors(object())
    with pytest.raises(SealedError):
        sealed.tensors(None)
    X_test, y_test = sealed.tensors(key)
    assert torch.equal(X_test, torch.from_numpy(X[split.test]))
    assert torch.equal(y_test, torch.from_numpy(y[split.test]))
