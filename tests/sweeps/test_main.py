"""Bad input: one clear message naming key, value and what is allowed; exit 2; storage untouched."""

import subprocess
import sys

import pytest

from sweeps.__main__ import main

QUICK = ["+experiment=quickstart", "sweep.storage=sqlite:///bad.db"]

CASES = [
    (["sweep.n_trail=3"], "n_trail"),
    (["model=mpl"], "Could not find 'model/mpl'"),
    (["+experiment=nosuch"], "Could not find 'experiment/nosuch'"),
    (["search.optimizer.lr.low=0.5"], "search.optimizer.lr: low must be <= high, got low=0.5, high=0.3"),
    (["search.optimizer.lr.low=-1"], "search.optimizer.lr: a log scale needs low > 0, got low=-1"),
    (["search.model.hidden.choices=[]"], "search.model.hidden.choices must be a non-empty list, got []"),
    (["sweep.n_trials=0"], "sweep.n_trials must be >= 1, got 0"),
    (["sweep.sampler=grid"], "sweep.sampler must be one of ['tpe', 'random', 'qmc'], got 'grid'"),
    (["sweep.pruner=fast"], "sweep.pruner must be one of"),
    (["sweep.metric=f1"], "sweep.metric must be one of ['val_accuracy', 'val_loss'], got 'f1'"),
    (["model.widht=3"], "widht"),
    (["+model.bogus=3"], "model (practices.models.CNN): TypeError"),
    (["data=csv"], "data.path has no value (???)"),
    (["data=csv", "data.path=/no/such.csv"], "no file at '/no/such.csv'"),
    (["monitor=loud"], "Could not find 'monitor/loud'"),
    (["monitor.every_n_steps=0"], "monitor.every_n_steps must be >= 1, got 0"),
    (["monitor.patience=0"], "monitor.patience must be >= 1 epochs or null (never stop early), got 0"),
    (["monitor.checkpoints=all"],
     "monitor.checkpoints must be one of ['best_and_last', 'best', 'last', 'none'], got 'all'"),
    (["monitor.thresholds.dead_relu=1.5"], "monitor.thresholds.dead_relu must be in (0, 1], got 1.5"),
    (["+monitor.bogus=1"], "monitor.bogus"),
    (["+search.monitor.patience={type:int,low:1,high:5}"], "search.monitor.patience: monitor.* is fixed for a study"),
]
STORAGES = [
    ("sqlite:/bad.db", "is not a valid URL"),
    ("oracle://u@h/db", "dialect 'oracle' is not supported"),
    ("sqlite:///no/such/folder/x.db", "folder 'no/such/folder' of the SQLite file does not exist"),
    ("postgresql://user:hunter2@:::bad", "not a valid SQLAlchemy URL"),
]


@pytest.mark.parametrize("overrides,message", CASES)
def test_bad_config_exits_2_with_message_and_writes_nothing(overrides, message, in_tmp, capsys):
    assert main([*QUICK, *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and "Traceback" not in err
    assert list(in_tmp.iterdir()) == [], "nothing may be written before validation passes"


@pytest.mark.parametrize("storage,message", STORAGES)
def test_malformed_storage_exits_2_and_masks_password(storage, message, in_tmp, capsys):
    assert main(["+experiment=quickstart", f"sweep.storage={storage}"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "hunter2" not in err
    assert list(in_tmp.iterdir()) == []


def test_bad_config_in_a_real_process_has_no_traceback(in_tmp):
    proc = subprocess.run([sys.executable, "-m", "sweeps", "+experiment=quickstart", "sweep.n_trials=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: sweep.n_trials must be >= 1, got 0"
    assert not (in_tmp / "sweeps.db").exists()


def test_help_lists_usage(capsys):
    assert main(["--help"]) == 0
    assert "+experiment=NAME" in capsys.readouterr().out
