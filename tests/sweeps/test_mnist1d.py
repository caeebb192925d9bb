"""The MNIST-1D experiment (data=mnist1d, model=cnn1d, searched weight averaging) end to end, tiny."""

import importlib.util
import json
import sys

import optuna
import pytest

from sweeps.__main__ import main

TINY = ["+experiment=mnist1d_cnn", "sweep.n_trials=2", "data.num_samples=300", "trainer.max_epochs=4"]
needs_mnist1d = pytest.mark.skipif(importlib.util.find_spec("mnist1d") is None,
                                   reason="the mnist1d extra is not installed (pip install -e '.[mnist1d]')")


@pytest.mark.slow
@needs_mnist1d
def test_mnist1d_experiment_runs_two_trials_and_opens_the_vault(in_tmp, capsys):
    assert main(TINY) == 0
    study = optuna.load_study(study_name="mnist1d_cnn", storage="sqlite:///sweeps.db")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 2
    assert all(t.params["trainer.averaging"] in ("none", "ema", "swa") for t in complete)
    assert set(complete[0].params) >= {"optimizer.lr", "optimizer.weight_decay", "schedule", "trainer.averaging"}
    result = json.loads((in_tmp / "exports/mnist1d_cnn/test_result.json").read_text())["result"]
    assert result["n_test"] == 51  # ceil(0.16667 * 300): the test split is sealed apart from train and validation
    assert result["trial"] == study.best_trial.number and 0.0 <= result["test"]["test_accuracy"] <= 1.0


def test_mnist1d_without_the_package_is_refused_in_one_line(in_tmp, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    assert main(TINY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data (practices.mnist1d_data.load_mnist1d)"), err
    assert "pip install 'sweeps[mnist1d]'" in err[0]
    assert list(in_tmp.iterdir()) == []
