"""The training loop's callback hooks."""

import math

import pytest
import torch

from practices.data import TrainVal
from practices.models import MLP
from practices.train import Callback, fit


@pytest.fixture
def blobs():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 4, generator=generator)
    y = (X[:, 0] > 0).long()
    return TrainVal(X[:30], y[:30], X[30:], y[30:], 2)


class _Recorder(Callback):
    def __init__(self, stop_at=None, raise_at_step=None):
        self.calls, self.stop_at, self.raise_at_step = [], stop_at, raise_at_step

    def on_fit_start(self, model, optimizer):
        self.calls.append("start")

    def on_step_begin(self, step):
        self.calls.append(("begin", step))

    def on_after_backward(self, step, loss):
        self.calls.append(("backward", step, loss.requires_grad))

    def on_step_end(self, step, loss):
        self.calls.append(("end", step))
        if step == self.raise_at_step:
            raise RuntimeError("planted")

    def on_epoch_end(self, stats):
        self.calls.append(("epoch", stats.epoch))
        return stats.epoch == self.stop_at

    def on_fit_end(self):
        self.calls.append("fit_end")


def _run(data, callbacks, epochs=2):
    torch.manual_seed(0)
    model = MLP(data.in_shape, data.n_classes, width=8, depth=1)
    return fit(model, torch.optim.SGD(model.parameters(), lr=0.1), None, data, max_epochs=epochs, batch_size=10,
               seed=0, callbacks=callbacks)


def test_fit_calls_step_hooks_in_order_with_global_steps(blobs):
    recorder = _Recorder()
    _run(blobs, [recorder])
    steps_per_epoch = math.ceil(30 / 10)
    expected = ["start"]
    for epoch in (1, 2):
        for step in range((epoch - 1) * steps_per_epoch, epoch * steps_per_epoch):
            expected += [("begin", step), ("backward", step, True), ("end", step)]
        expected.append(("epoch", epoch))
    assert recorder.calls == expected + ["fit_end"]


def test_fit_ends_callbacks_also_when_a_hook_raises(blobs):
    recorder = _Recorder(raise_at_step=1)
    with pytest.raises(RuntimeError, match="planted"):
        _run(blobs, [recorder])
    assert recorder.calls[-2:] == [("end", 1), "fit_end"]


def test_fit_shows_every_callback_the_epoch_a_callback_stops_at(blobs):
    stopper, other = _Recorder(stop_at=1), _Recorder()
    result = _run(blobs, [stopper, other], epochs=3)
    assert result.stopped_by == "callback" and result.epochs_run == 1
    assert ("epoch", 1) in other.calls and other.calls[-1] == "fit_end"


def test_fit_with_epoch_only_callbacks_keeps_its_results(blobs):
    class EpochOnly(Callback):
        def on_epoch_end(self, stats):
            return None

    assert _run(blobs, [EpochOnly()]).history == _run(blobs, []).history
