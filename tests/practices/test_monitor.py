"""The monitor on real (small) training runs of the digits, and its diagnoses on planted records."""

import math

import pytest
import torch

from practices.data import TrainVal, as_arrays, load_digits, split_indices, train_val
from practices.models import CNN, MLP
from practices.monitor import Diverged, Monitor
from practices.train import EpochStats, evaluate, fit


@pytest.fixture(scope="module")
def digits():
    X, y = as_arrays(*load_digits())
    return train_val(X, y, split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the conftest restores the count after each test


def _fit(model, data, monitor, *, lr=0.05, epochs=3, batch_size=32, momentum=0.9):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return fit(model, optimizer, None, data, max_epochs=epochs, batch_size=batch_size, seed=0, callbacks=[monitor])


def _cnn(data, seed=0):
    torch.manual_seed(seed)
    return CNN(data.in_shape, data.n_classes)


def _codes(monitor):
    return [d.code for d in monitor.diagnose()]


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_monitor_records_epochs_gradients_and_ratios(digits):
    monitor = Monitor(every_n_steps=5)
    result = _fit(_cnn(digits), digits, monitor, epochs=2)
    assert [s.epoch for s in monitor.epochs] == [1, 2] and monitor.epochs == result.history
    steps_per_epoch = math.ceil(len(digits.X_train) / 32)
    assert len(monitor.step_losses) == 2 * steps_per_epoch
    assert monitor.sampled_steps == list(range(0, 2 * steps_per_epoch, 5))
    assert set(monitor.grad_norms) == {"0:Conv2d", "3:Conv2d", "7:Linear", "9:Linear"}
    assert set(monitor.dead_fractions) == {"1:ReLU", "4:ReLU", "8:ReLU"}
    for values in (*monitor.grad_norms.values(), *monitor.update_ratios.values(), *monitor.dead_fractions.values()):
        assert len(values) == len(monitor.sampled_steps)
    assert all(n > 0 for n in monitor.global_grad_norms)
    assert abs(monitor.initial_loss - math.log(10)) < 0.1, "an untrained net's loss is about ln(C)"
    assert (monitor.best_epoch, monitor.best_value) == (result.best_epoch, result.best_value)


def test_monitor_does_not_change_the_training_numbers(digits):
    model = _cnn(digits)
    watched = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), None, digits, max_epochs=1, batch_size=32,
                  seed=0, callbacks=[Monitor(every_n_steps=1)])
    unwatched_model = _cnn(digits)
    unwatched = fit(unwatched_model, torch.optim.SGD(unwatched_model.parameters(), lr=0.05), None, digits,
                    max_epochs=1, batch_size=32, seed=0)
    assert watched.history == unwatched.history


def test_monitor_planted_divergence_raises_in_the_first_epoch(digits):
    model = _cnn(digits)
    monitor = Monitor(every_n_steps=5)
    with pytest.raises(Diverged) as caught:
        _fit(model, digits, monitor, lr=1.0e3, epochs=5)
    assert caught.value.epoch == 1
    assert caught.value.diagnosis.code == "diverged" and caught.value.diagnosis.severity == "error"
    assert "blew up" in str(caught.value) or "non-finite" in str(caught.value)
    assert monitor.divergence == caught.value.diagnosis and _codes(monitor)[0] == "diverged"
    assert _hooks(model) == 0, "hooks are removed also when training raises"
    assert monitor.last_state is not None and monitor.best_state is None


def test_monitor_planted_overfitting_is_diagnosed_with_the_epoch(digits):
    tiny = TrainVal(digits.X_train[:40], digits.y_train[:40], digits.X_val, digits.y_val, digits.n_classes)
    torch.manual_seed(0)
    model = MLP(tiny.in_shape, tiny.n_classes, width=512, depth=3, dropout=0.0)
    monitor = Monitor(every_n_steps=5)
    _fit(model, tiny, monitor, epochs=25, batch_size=8)
    found = {d.code: d for d in monitor.diagnose()}
    assert "overfitting" in found
    val = [s.val_loss for s in monitor.epochs]
    lowest = val.index(min(val)) + 1
    overfit = found["overfitting"]
    assert overfit.epoch == lowest + 1 < 25
    assert f"the gap opened at epoch {lowest + 1}" in overfit.summary
    assert overfit.numbers["val_loss_final"] > overfit.numbers["val_loss_min"]
    assert "regularization" in overfit.advice


def test_monitor_too_small_learning_rate_is_flagged_by_the_update_ratio(digits):
    slow = Monitor(every_n_steps=5)
    _fit(_cnn(digits), digits, slow, lr=1.0e-5, epochs=2)
    found = {d.code: d for d in slow.diagnose()}
    assert "lr_too_low" in found
    assert found["lr_too_low"].numbers["update_ratio"] < 1e-4
    assert all(s.update_ratio < 1e-4 for s in slow.layer_stats() if not math.isnan(s.update_ratio))
    healthy = Monitor(every_n_steps=5)
    _fit(_cnn(digits), digits, healthy, lr=0.05, epochs=2)
    assert "lr_too_low" not in _codes(healthy)


def test_monitor_measures_dead_relus_on_a_planted_negative_bias(digits):
    torch.manual_seed(0)
    model = MLP(digits.in_shape, digits.n_classes, width=64, depth=2)
    with torch.no_grad():
        model[1].bias.fill_(-100.0)  # the first hidden layer can never fire
    monitor = Monitor(every_n_steps=5)
    _fit(model, digits, monitor, epochs=1)
    assert monitor.dead_fractions["2:ReLU"] and all(f == 1.0 for f in monitor.dead_fractions["2:ReLU"])
    found = {d.code: d for d in monitor.diagnose()}
    assert found["dead_relu"].numbers["dead_relu[2:ReLU]"] == 1.0
    torch.manual_seed(0)
    healthy = Monitor(every_n_steps=5)
    _fit(MLP(digits.in_shape, digits.n_classes, width=64, depth=2), digits, healthy, epochs=1)
    assert max(healthy.dead_fractions["2:ReLU"]) < 0.5


def test_monitor_measures_saturated_tanh_units(digits):
    torch.manual_seed(0)
    model = MLP(digits.in_shape, digits.n_classes, width=64, depth=1, activation="tanh")
    with torch.no_grad():
        model[1].weight.mul_(100.0)
    monitor = Monitor(every_n_steps=5)
    _fit(model, digits, monitor, lr=0.001, epochs=1)
    assert min(monitor.saturated_fractions["2:Tanh"]) > 0.5
    assert "saturation" in _codes(monitor)


def test_monitor_checkpoints_load_with_weights_only_and_reproduce_the_metric(digits, tmp_path):
    model = _cnn(digits)
    monitor = Monitor(every_n_steps=10)
    result = _fit(model, digits, monitor, epochs=4)
    torch.save(monitor.best_state, tmp_path / "best.pt")
    torch.save(monitor.last_state, tmp_path / "last.pt")
    for name, epoch in (("best.pt", result.best_epoch), ("last.pt", result.epochs_run)):
        fresh = _cnn(digits, seed=123)
        fresh.load_state_dict(torch.load(tmp_path / name, weights_only=True))
        val_loss, val_accuracy = evaluate(fresh, digits.X_val, digits.y_val)
        assert (val_loss, val_accuracy) == (result.history[epoch - 1].val_loss, result.history[epoch - 1].val_accuracy)
    assert monitor.first_layer_filters is not None and monitor.first_layer_filters.shape == (16, 1, 3, 3)


def test_monitor_removes_its_hooks_and_model_after_the_run(digits):
    model = _cnn(digits)
    monitor = Monitor(every_n_steps=1)
    _fit(model, digits, monitor, epochs=1)
    assert _hooks(model) == 0
    assert monitor._model is None, "the monitor keeps no reference to the trial's model"


def test_monitor_early_stopping_after_patience_epochs():
    monitor = Monitor("val_accuracy", patience=2, checkpoints="none")
    stops = [monitor.on_epoch_end(EpochStats(e, 1.0, 1.0, acc, 0.1)) for e, acc in enumerate([0.5, 0.6, 0.6, 0.55], 1)]
    assert stops == [False, False, False, True]
    assert monitor.stopped_epoch == 4 and monitor.best_epoch == 2
    by_loss = Monitor("val_loss", patience=1, checkpoints="none")
    assert by_loss.on_epoch_end(EpochStats(1, 1.0, 0.9, 0.5, 0.1)) is False
    assert by_loss.on_epoch_end(EpochStats(2, 1.0, 0.8, 0.5, 0.1)) is False
    assert by_loss.on_epoch_end(EpochStats(3, 1.0, 0.85, 0.5, 0.1)) is True


def _planted(epoch_losses, *, initial=2.3, val_losses=None):
    monitor = Monitor(checkpoints="none")
    val_losses = val_losses or epoch_losses
    monitor.epochs = [EpochStats(e, t, v, 0.5, 0.1) for e, (t, v) in enumerate(zip(epoch_losses, val_losses), 1)]
    monitor.sampled_losses = [initial]
    return monitor


def test_diagnose_loss_jump_means_learning_rate_too_high():
    monitor = _planted([2.0, 1.5, 1.2, 2.4, 1.0])
    found = {d.code: d for d in monitor.diagnose()}
    assert found["lr_too_high"].epoch == 4 and found["lr_too_high"].numbers["jump_factor"] == pytest.approx(2.0)


def test_diagnose_oscillating_loss_means_learning_rate_too_high():
    monitor = _planted([2.0, 1.8, 1.9, 1.7, 1.8, 1.6])
    found = {d.code: d for d in monitor.diagnose()}
    assert found["lr_too_high"].numbers["rising_epochs"] == 2
    assert "lr_too_high" not in _codes(_planted([2.0, 1.8, 1.6, 1.4, 1.2, 1.0]))


def test_diagnose_noisy_step_losses_suggest_a_larger_batch():
    noisy = _planted([1.0, 0.9])
    noisy.step_losses = [1.0, 0.2, 1.8, 0.3, 1.7, 0.1, 1.9, 0.2] * 2
    found = {d.code: d for d in noisy.diagnose()}
    assert found["noisy_loss"].numbers["noise"] > 0.5 and "larger mini-batch" in found["noisy_loss"].advice
    smooth = _planted([1.0, 0.9])
    smooth.step_losses = [1.0, 0.98, 0.97, 0.95, 0.94, 0.93, 0.91, 0.9] * 2
    assert "noisy_loss" not in _codes(smooth)


def test_diagnose_vanishing_gradients_in_early_layers():
    monitor = _planted([2.0, 1.9])
    monitor.grad_norms = {"0:Linear": [1e-6, 2e-6], "2:Linear": [1e-2, 1e-2], "4:Linear": [0.1, 0.1]}
    found = {d.code: d for d in monitor.diagnose()}
    assert found["vanishing_gradients"].numbers == {"first_layer_grad_norm": 1.5e-6, "last_layer_grad_norm": 0.1}


def test_diagnose_underfitting_when_both_losses_stay_high():
    found = {d.code: d for d in _planted([2.2, 2.1, 2.0], val_losses=[2.2, 2.1, 2.05]).diagnose()}
    assert found["underfitting"].epoch == 3
    assert "underfitting" not in _codes(_planted([1.0, 0.5, 0.1], val_losses=[1.0, 0.5, 0.12]))


def test_diagnose_update_ratio_outside_the_healthy_band():
    monitor = _planted([1.0, 0.5])
    monitor.update_ratios = {"0:Linear": [1e-3, 2e-3], "2:Linear": [0.5, 0.3]}
    found = {d.code: d for d in monitor.diagnose()}
    assert found["update_ratio"].numbers == {"update_ratio[2:Linear]": 0.4}


def test_monitor_rejects_bad_settings():
    with pytest.raises(ValueError, match="every_n_steps must be >= 1, got 0"):
        Monitor(every_n_steps=0)
    with pytest.raises(ValueError, match="checkpoints must be one of"):
        Monitor(checkpoints="all")
    with pytest.raises(ValueError, match="metric must be one of"):
        Monitor("f1")
