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


def test_standardize_uses_the_training_rows_only():
    from practices.data import standardize

    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(100, 4)).astype(np.float32)
    train, rest = np.arange(60), np.arange(60, 100)
    out = standardize(X, train)
    np.testing.assert_allclose(out[train].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[train].std(axis=0), 1.0, atol=1e-5)
    shifted = X.copy()
    shifted[rest] = shifted[rest] * 1000.0 + 1e6  # validation and test rows changed beyond recognition
    again = standardize(shifted, train)
    np.testing.assert_array_equal(again[train], out[train])  # no statistic comes from the other rows
    mean, std = X[train].astype(np.float64).mean(axis=0), X[train].astype(np.float64).std(axis=0)
    np.testing.assert_allclose(out[rest], (X[rest] - mean) / std, rtol=1e-5)


def test_standardize_leaves_a_constant_feature_unscaled():
    from practices.data import standardize

    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [9.0, 7.0]], dtype=np.float32)
    out = standardize(X, np.arange(3))
    assert out[:3, 1].tolist() == [0.0, 0.0, 0.0] and out[3, 1] == 2.0 and np.isfinite(out).all()
