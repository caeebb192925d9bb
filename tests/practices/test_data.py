import numpy as np
import pytest

from practices.data import as_arrays, load_digits, load_table, split_indices, train_val


def test_split_indices_is_deterministic_disjoint_and_stratified():
    X, y = load_digits()
    a = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=3)
    b = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=3)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert len(set(a.train) | set(a.val) | set(a.test)) == len(y)
    assert not set(a.train) & set(a.test) and not set(a.val) & set(a.test) and not set(a.train) & set(a.val)
    overall = np.bincount(y) / len(y)
    for part in (a.train, a.val, a.test):
        assert np.abs(np.bincount(y[part], minlength=10) / len(part) - overall).max() < 0.01
    assert abs(len(a.test) - 0.2 * len(y)) <= 1 and abs(len(a.val) - 0.2 * len(y)) <= 1


def test_split_indices_changes_with_seed():
    _, y = load_digits()
    a = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)
    b = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert not np.array_equal(a.test, b.test)


def test_train_val_holds_no_test_sample():
    X, y = load_digits()
    split = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)
    data = train_val(X, y, split)
    assert len(data.X_train) == len(split.train) and len(data.X_val) == len(split.val)
    assert data.in_shape == (1, 8, 8) and data.n_classes == 10
    assert not hasattr(data, "X_test")


def test_load_table_reads_csv_and_parquet(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "kind": ["x", "y", "x"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        X, y = load_table(str(tmp_path / name), label="kind")
        np.testing.assert_array_equal(X, [[1, 4], [2, 5], [3, 6]])
        np.testing.assert_array_equal(y, [0, 1, 0])
    X, _ = load_table(str(tmp_path / "t.csv"), label="kind", features=["b"])
    assert X.shape == (3, 1)
    with pytest.raises(ValueError, match="data.label"):
        load_table(str(tmp_path / "t.csv"), label="nope")


def test_as_arrays_rejects_float_labels():
    with pytest.raises(ValueError, match="integer class labels"):
        as_arrays(np.zeros((3, 2)), np.array([0.0, 1.0, 0.5]))
