"""Tables (data=csv): standardized with training statistics only; the tabular example; study names."""

import numpy as np
import pandas as pd
import pytest

from sweeps.experiment._experiment import prepare


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(5.0, 3.0, size=(90, 3)), columns=["a", "b", "c"])
    frame["label"] = ["x", "y", "z"] * 30
    path = tmp_path / "blobs table.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_csv_features_are_standardized_with_training_statistics_only(table, in_tmp, tmp_path):
    path, frame = table
    exp, data = prepare(["data=csv", f"data.path={path}"])
    assert exp.cfg.data.standardize is True
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, atol=1e-5)
    assert abs(data.X_val.mean()) > 1e-3, "validation rows are scaled with the training numbers, not their own"
    _, raw = prepare(["data=csv", f"data.path={path}", "data.standardize=false"])
    train_rows = raw.X_train.astype(np.float64)
    expected = (raw.X_val - train_rows.mean(axis=0)) / train_rows.std(axis=0)
    np.testing.assert_allclose(data.X_val, expected, rtol=1e-5)
    # Validation and test rows changed beyond recognition: the training rows come out the same.
    train_ids = {tuple(row) for row in raw.X_train.tolist()}
    changed = frame.copy()
    mask = [tuple(np.float32(v) for v in row) not in train_ids for row in frame[["a", "b", "c"]].to_numpy()]
    changed.loc[mask, ["a", "b", "c"]] = changed.loc[mask, ["a", "b", "c"]] * 1000 + 1e6
    other = tmp_path / "changed.csv"
    changed.to_csv(other, index=False)
    _, moved = prepare(["data=csv", f"data.path={other}"])
    np.testing.assert_array_equal(moved.X_train, data.X_train)


def test_tabular_example_runs_from_the_shipped_csv(in_tmp):
    exp, data = prepare(["+experiment=wine"])
    assert exp.study_name == "wine"
    assert data.in_shape == (13,) and data.n_classes == 3
    assert len(data.y_train) + len(data.y_val) + data.sealed.n_samples == 178
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-5)


def test_default_study_name_follows_the_data_file(table, in_tmp):
    path, _ = table
    assert prepare(["data=csv", f"data.path={path}"])[0].study_name == "sweeps-blobs_table"
    assert prepare(["+experiment=wine", f"data.path={path}", "data.label=label"])[0].study_name == "wine-blobs_table"
    assert prepare(["+experiment=wine", f"data.path={path}", "data.label=label",
                    "sweep.study_name=mine"])[0].study_name == "mine"
    assert prepare(["+experiment=quickstart"])[0].study_name == "quickstart"
