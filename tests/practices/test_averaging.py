"""Weight averaging: EMA and SWA values, validation and checkpoints on the averaged weights, BatchNorm."""

import math

import pytest
import torch
from torch import nn

from practices.averaging import WeightAverage, check_averaging, swa_start
from practices.data import TrainVal
from practices.models import MLP
from practices.monitor import Monitor
from practices.train import Callback, evaluate, fit

N_TRAIN, BATCH = 30, 10
STEPS_PER_EPOCH = math.ceil(N_TRAIN / BATCH)


@pytest.fixture
def blobs():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 4, generator=generator)
    y = (X[:, 0] > 0).long()
    return TrainVal(X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:], 2)


class _Weights(Callback):
    """The trained (raw) weights after every optimizer step."""

    def __init__(self):
        self.steps = []

    def on_fit_start(self, model, optimizer):
        self.model = model

    def on_step_end(self, step, loss):
        self.steps.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})


def _mlp(data):
    torch.manual_seed(0)
    return MLP(data.in_shape, data.n_classes, width=8, depth=1)


def _fit(model, data, epochs, callbacks=(), average=None, lr=0.1):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return fit(model, optimizer, None, data, max_epochs=epochs, batch_size=BATCH, seed=0, callbacks=callbacks,
               average=average)


def test_weight_average_ema_equals_a_hand_computed_ema_of_the_step_weights(blobs):
    model, recorder, decay = _mlp(blobs), _Weights(), 0.8
    average = WeightAverage(model, "ema", ema_decay=decay)
    _fit(model, blobs, 2, [recorder], average)
    assert len(recorder.steps) == 2 * STEPS_PER_EPOCH == average.n_averaged
    ema = dict(recorder.steps[0])  # the first update copies the weights
    for weights in recorder.steps[1:]:
        ema = {k: decay * ema[k] + (1 - decay) * weights[k] for k in ema}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, ema[key])
        assert not torch.allclose(value, recorder.steps[-1][key]), "the model holds the average, not the last step"


def test_weight_average_swa_equals_the_mean_of_the_end_of_epoch_weights(blobs):
    model, recorder = _mlp(blobs), _Weights()
    average = WeightAverage(model, "swa", swa_start_epoch=2)
    _fit(model, blobs, 4, [recorder], average)
    ends = [recorder.steps[epoch * STEPS_PER_EPOCH - 1] for epoch in (2, 3, 4)]
    assert average.n_averaged == 3
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, sum(e[key] for e in ends) / 3)


def test_weight_average_never_changes_the_weights_being_trained(blobs):
    runs = {}
    for name, make in (("none", lambda m: None), ("ema", lambda m: WeightAverage(m, "ema", ema_decay=0.5)),
                       ("swa", lambda m: WeightAverage(m, "swa", swa_start_epoch=1))):
        model, recorder = _mlp(blobs), _Weights()
        result = _fit(model, blobs, 3, [recorder], make(model))
        runs[name] = ([s.train_loss for s in result.history], recorder.steps[-1])
    for name in ("ema", "swa"):
        assert runs[name][0] == runs["none"][0]
        for key, value in runs["none"][1].items():
            assert torch.equal(runs[name][1][key], value)


def test_weight_average_none_leaves_fit_as_it_was(blobs):
    plain, averaged_none = _mlp(blobs), _mlp(blobs)
    a = _fit(plain, blobs, 3)
    b = _fit(averaged_none, blobs, 3, average=None)
    assert a.history == b.history
    for key, value in plain.state_dict().items():
        assert torch.equal(averaged_none.state_dict()[key], value)


class _Planted(torch.optim.Optimizer):
    """Sets the one weight ``w`` of a ``Linear(1, 2)`` to the next planted value at each step:
    logits ``(w x, -w x)``, so class 0 for ``x > 0`` is right exactly when ``w > 0``."""

    def __init__(self, params, values):
        super().__init__(params, {"lr": 0.0})
        self.values = iter(values)

    @torch.no_grad()
    def step(self, closure=None):
        value = next(self.values)
        for group in self.param_groups:
            for p in group["params"]:
                p.copy_(torch.tensor([[value], [-value]]))


def _planted_run(values, average, monitor=None):
    torch.manual_seed(0)
    model = nn.Linear(1, 2, bias=False)
    data = TrainVal(torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 1]),
                    torch.tensor([[1.0], [2.0], [-1.0], [-2.0]]), torch.tensor([0, 0, 1, 1]), 2)
    avg = average(model) if average else None
    result = fit(model, _Planted(model.parameters(), values), None, data, max_epochs=len(values), batch_size=2, seed=0,
                 callbacks=[monitor] if monitor else [], average=avg)
    return result, model


def test_fit_validates_and_checkpoints_the_averaged_weights():
    # One step per epoch. Raw weights -1, 5, -2: right, wrong... their running means -1, 2, 2/3.
    values = [-1.0, 5.0, -2.0]
    raw, _ = _planted_run(values, None)
    assert [s.val_accuracy for s in raw.history] == [0.0, 1.0, 0.0]
    monitor = Monitor("val_accuracy", checkpoints="best_and_last")
    swa, model = _planted_run(values, lambda m: WeightAverage(m, "swa", swa_start_epoch=1), monitor)
    assert [s.val_accuracy for s in swa.history] == [0.0, 1.0, 1.0]
    assert (swa.best_epoch, monitor.best_epoch) == (2, 2)
    torch.testing.assert_close(monitor.best_state["weight"], torch.tensor([[2.0], [-2.0]]))  # raw was 5
    torch.testing.assert_close(monitor.last_state["weight"], torch.tensor([[2 / 3], [-2 / 3]]))  # raw was -2
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[2 / 3], [-2 / 3]]))


def test_fit_validates_the_raw_weights_before_swa_starts():
    values = [-1.0, 5.0, -2.0]
    swa, model = _planted_run(values, lambda m: WeightAverage(m, "swa", swa_start_epoch=3))
    assert [s.val_accuracy for s in swa.history] == [0.0, 1.0, 0.0]  # epoch 3 averages -2 alone
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[-2.0], [2.0]]))


def test_fit_validates_the_ema_weights():
    # decay 0.5: EMA -1, 2, 0.5 against raw -1, 5, -1
    ema, model = _planted_run([-1.0, 5.0, -1.0], lambda m: WeightAverage(m, "ema", ema_decay=0.5))
    assert [s.val_accuracy for s in ema.history] == [0.0, 1.0, 1.0]
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[0.5], [-0.5]]))


def test_weight_average_recomputes_batchnorm_statistics_for_the_averaged_weights():
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(48, 2, generator=generator)
    y = (X.sum(dim=1) > 0).long()
    data = TrainVal(X[:32], y[:32], X[32:], y[32:], 2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    recorder = _Weights()
    average = WeightAverage(model, "swa", swa_start_epoch=1)
    batch = 8
    result = fit(model, torch.optim.SGD(model.parameters(), lr=0.2), None, data, max_epochs=3, batch_size=batch,
                 seed=0, callbacks=[recorder], average=average)
    assert average.has_batchnorm
    with torch.no_grad():  # the statistics of one pass, in order, over the training batches
        hidden = [model[0](data.X_train[i : i + batch]) for i in range(0, len(data.X_train), batch)]
    mean = torch.stack([h.mean(dim=0) for h in hidden]).mean(dim=0)
    var = torch.stack([h.var(dim=0, unbiased=True) for h in hidden]).mean(dim=0)
    torch.testing.assert_close(model[1].running_mean, mean)
    torch.testing.assert_close(model[1].running_var, var)
    assert not torch.allclose(recorder.steps[-1]["1.running_mean"], mean), "the raw run's statistics differ"
    assert result.history[-1].val_loss == pytest.approx(evaluate(model, data.X_val, data.y_val)[0], rel=1e-6)


def test_weight_average_without_batchnorm_makes_no_extra_pass(blobs, monkeypatch):
    import practices.averaging

    monkeypatch.setattr(practices.averaging, "update_bn", lambda *a, **k: pytest.fail("update_bn without BatchNorm"))
    model = _mlp(blobs)
    _fit(model, blobs, 2, average=WeightAverage(model, "swa", swa_start_epoch=1))


@pytest.mark.parametrize("args, key", [
    (("maybe", 0.9, None), "trainer.averaging"),
    (("ema", 1.5, None), "trainer.ema_decay"),
    (("ema", 0.0, None), "trainer.ema_decay"),
    (("swa", 0.9, 0), "trainer.swa_start_epoch"),
    (("swa", 0.9, 30, 20), "trainer.swa_start_epoch=30"),
])
def test_check_averaging_refuses_values_naming_the_key(args, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        check_averaging(*args)


def test_swa_start_defaults_to_the_last_quarter_of_the_epochs():
    assert [swa_start(None, n) for n in (1, 2, 4, 20)] == [1, 2, 4, 16]
    assert swa_start(3, 20) == 3
