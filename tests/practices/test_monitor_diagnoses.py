"""Each of the nine diagnoses as a pure function of a hand-made record."""

import math

import pytest

from practices.monitor import DIAGNOSES, Record, Thresholds, diagnose
from practices.train import EpochStats

T = Thresholds()


def _record(train_losses, val_losses=None, *, initial=2.3, **fields):
    val_losses = val_losses or train_losses
    epochs = [EpochStats(e, t, v, 0.5, 0.1) for e, (t, v) in enumerate(zip(train_losses, val_losses), 1)]
    return Record(epochs=epochs, sampled_losses=[initial], **fields)


def _run(code, record, thresholds=T):
    return DIAGNOSES[code](record, thresholds)


def test_diagnoses_are_the_nine_of_practices_in_report_order():
    assert list(DIAGNOSES) == ["vanishing_gradients", "lr_too_high", "lr_too_low", "noisy_loss", "overfitting",
                               "underfitting", "update_ratio", "dead_relu", "saturation"]


def test_vanishing_gradients_first_layer_far_below_the_last():
    record = _record([2.0, 1.9], grad_norms={"0:Linear": [1e-6, 2e-6], "2:Linear": [0.1, 0.1]})
    found = _run("vanishing_gradients", record)
    assert found.numbers == {"first_layer_grad_norm": 1.5e-6, "last_layer_grad_norm": 0.1}
    assert "6.7e+04x smaller" in found.summary and found.advice.startswith("Use ReLU-like")
    assert _run("vanishing_gradients", _record([2.0, 1.9], grad_norms={"0:Linear": [0.01], "2:Linear": [0.1]})) is None


def test_vanishing_gradients_global_norm_collapse_while_the_loss_stays_high():
    norms = [1.0, 1.0, 1.0, 1.0, 1e-5, 1e-5]
    found = _run("vanishing_gradients", _record([2.2, 2.1], global_grad_norms=norms))
    assert found.numbers == {"early_grad_norm": 1.0, "late_grad_norm": 1e-5, "train_loss": 2.1}
    assert _run("vanishing_gradients", _record([2.2, 0.5], global_grad_norms=norms)) is None, "the loss fell"


def test_lr_too_high_jump_and_oscillation():
    jump = _run("lr_too_high", _record([2.0, 1.5, 1.2, 2.4, 1.0]))
    assert (jump.epoch, jump.numbers) == (4, {"jump_factor": pytest.approx(2.0), "jumps": 1})
    wobble = _run("lr_too_high", _record([2.0, 1.8, 1.9, 1.7, 1.8, 1.6]))
    assert wobble.numbers == {"rising_epochs": 2, "share": pytest.approx(0.4)}
    assert _run("lr_too_high", _record([2.0, 1.8, 1.6, 1.4, 1.2, 1.0])) is None


def test_lr_too_low_tiny_updates_and_little_progress():
    ratios = {"0:Linear": [1e-6, 2e-6], "2:Linear": [3e-6]}
    found = _run("lr_too_low", _record([2.2, 2.1], update_ratios=ratios))
    assert found.numbers == {"update_ratio": pytest.approx(2.25e-6), "loss_progress": pytest.approx(0.2 / 2.3)}
    assert _run("lr_too_low", _record([1.0, 0.3], update_ratios=ratios)) is None, "the loss fell by 87%"
    assert _run("lr_too_low", _record([2.2, 2.1], update_ratios={"0:Linear": [1e-3]})) is None


def test_noisy_loss_step_losses_scatter_around_their_trend():
    noisy = _record([1.0, 0.9], step_losses=[1.0, 0.2, 1.8, 0.3, 1.7, 0.1, 1.9, 0.2] * 2)
    found = _run("noisy_loss", noisy)
    assert found.numbers["noise"] == pytest.approx(noisy.noise()) and found.numbers["noise"] > 0.5
    smooth = _record([1.0, 0.9], step_losses=[1.0, 0.98, 0.97, 0.95, 0.94, 0.93, 0.91, 0.9] * 2)
    assert _run("noisy_loss", smooth) is None


def test_overfitting_validation_loss_rises_after_its_minimum():
    record = _record([1.0, 0.8, 0.6, 0.4, 0.2], [1.0, 0.9, 1.0, 1.1, 1.2])
    found = _run("overfitting", record)
    assert found.epoch == 3 and "the gap opened at epoch 3" in found.summary
    assert found.numbers == {"val_loss_min": 0.9, "val_loss_final": 1.2, "train_loss_final": 0.2,
                             "rise": pytest.approx(1 / 3)}
    assert _run("overfitting", _record([1.0, 0.8, 0.6, 0.4, 0.2], [1.0, 0.9, 0.91, 0.92, 0.93])) is None, "rise < 5%"
    assert _run("overfitting", record, Thresholds(overfit_epochs=4)) is None, "only 3 epochs after the minimum"


def test_underfitting_both_losses_close_and_high():
    found = _run("underfitting", _record([2.2, 2.1, 2.0], [2.2, 2.1, 2.05]))
    assert found.epoch == 3 and found.numbers == {"train_loss": 2.0, "val_loss": 2.05, "initial_loss": 2.3}
    assert _run("underfitting", _record([1.0, 0.5, 0.1], [1.0, 0.5, 0.12])) is None


def test_update_ratio_outside_the_healthy_band():
    record = _record([1.0, 0.5], update_ratios={"0:Linear": [1e-3, 2e-3], "2:Linear": [0.5, 0.3]})
    assert _run("update_ratio", record).numbers == {"update_ratio[2:Linear]": 0.4}
    assert _run("update_ratio", _record([1.0], update_ratios={"0:Linear": [1e-3]})) is None


def test_dead_relu_judged_on_the_last_epochs_samples():
    # Two epochs of two samples each: dead at the start, alive at the end, and the other way round.
    steps = [0, 5, 10, 15]
    recovered = _record([1.0, 0.5], sampled_steps=steps, dead_fractions={"1:ReLU": [1.0, 1.0, 0.1, 0.2]})
    assert _run("dead_relu", recovered) is None
    dying = _record([1.0, 0.5], sampled_steps=steps, dead_fractions={"1:ReLU": [0.1, 0.2, 0.8, 0.9]})
    assert _run("dead_relu", dying).numbers == {"dead_relu[1:ReLU]": pytest.approx(0.85)}


def test_saturation_above_its_limit():
    record = _record([1.0], sampled_steps=[0, 5], saturated_fractions={"2:Tanh": [0.5, 0.6], "4:Sigmoid": [0.1, 0.2]})
    found = _run("saturation", record)
    assert found.numbers == {"saturation[2:Tanh]": pytest.approx(0.55)} and "2:Tanh 55%" in found.summary


def test_diagnose_runs_every_check_on_an_empty_record():
    assert diagnose(Record()) == []
    assert math.isnan(Record().initial_loss)
