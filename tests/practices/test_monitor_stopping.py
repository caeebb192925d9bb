"""Early stopping with checkpoints, and the record's summaries."""

import math

import pytest
import torch

from practices.monitor import EarlyStopping, Record
from practices.train import EpochStats


def test_early_stopping_keeps_the_best_epochs_weights_and_the_last():
    model = torch.nn.Linear(2, 2)
    stopping = EarlyStopping("val_loss", patience=2, checkpoints="best_and_last")
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert stopping.update(EpochStats(1, 1.0, 0.5, 0.5, 0.1), model) is False
    with torch.no_grad():
        model.weight.fill_(2.0)
    assert stopping.update(EpochStats(2, 1.0, 0.6, 0.5, 0.1), model) is False
    assert stopping.update(EpochStats(3, 1.0, 0.7, 0.5, 0.1), model) is True
    stopping.finish(model)
    assert (stopping.best_epoch, stopping.best_value, stopping.stopped_epoch) == (1, 0.5, 3)
    assert stopping.best_state["weight"].eq(1.0).all() and stopping.last_state["weight"].eq(2.0).all()


@pytest.mark.parametrize("policy, best, last", [("best", True, False), ("last", False, True), ("none", False, False)])
def test_early_stopping_checkpoint_policies(policy, best, last):
    model = torch.nn.Linear(2, 2)
    stopping = EarlyStopping(checkpoints=policy)
    stopping.update(EpochStats(1, 1.0, 0.5, 0.5, 0.1), model)
    stopping.finish(model)
    assert (stopping.best_state is not None, stopping.last_state is not None) == (best, last)


def test_record_layer_stats_are_medians_per_layer():
    record = Record(grad_norms={"0:Linear": [1.0, 3.0, math.nan]}, update_ratios={"0:Linear": [1e-3, 3e-3]},
                    dead_fractions={"1:ReLU": [0.2, 0.4]})
    rows = {row.layer: row for row in record.layer_stats()}
    assert (rows["0:Linear"].grad_norm, rows["0:Linear"].update_ratio) == (2.0, 2e-3)
    assert rows["1:ReLU"].dead_fraction == pytest.approx(0.3) and math.isnan(rows["1:ReLU"].grad_norm)


def test_early_stopping_counts_patience_from_its_first_counted_epoch():
    # SWA's start: the plateau before the average begins does not stop the run.
    stopping = EarlyStopping("val_loss", patience=2, checkpoints="none", patience_from_epoch=4)
    losses = [0.5, 0.6, 0.7, 0.8, 0.9]  # never better than epoch 1
    stops = [stopping.update(EpochStats(epoch, 1.0, loss, 0.5, 0.1), None) for epoch, loss in enumerate(losses, 1)]
    assert stops == [False, False, False, False, True]  # epochs 4 and 5 count; from epoch 1 it stopped at 3
    assert (stopping.best_epoch, stopping.stopped_epoch) == (1, 5)
    with pytest.raises(ValueError, match="patience_from_epoch must be >= 1, got 0"):
        EarlyStopping(patience=2, patience_from_epoch=0)
