"""The training loop: mini-batch gradient descent over in-memory tensors, with hooks.

The loop knows nothing of Optuna. A caller that wants to report or prune passes a callback whose
``on_epoch_end`` sees each epoch's numbers; it may return True to stop, or raise to abort. Step-level
hooks (``on_step_begin``, ``on_after_backward``, ``on_step_end``) are called only for callbacks that
override them, so a run without a monitor pays nothing for them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from practices.averaging import WeightAverage
from practices.data import TrainVal
from practices.options import METRICS
from practices.schedules import needs_metric

__all__ = ["Callback", "EpochStats", "FitResult", "NonFiniteLossError", "evaluate", "fit", "resolve_device"]


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """One epoch's numbers. ``epoch`` counts from 1; ``lr`` is the rate the epoch trained with."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


@dataclasses.dataclass
class FitResult:
    """What a run of :func:`fit` produced."""

    history: list[EpochStats]
    metric: str
    best_epoch: int
    best_value: float
    stopped_by: str | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.history)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"non-finite training loss {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


class Callback:
    """Hooks into :func:`fit`. Subclasses override what they need.

    ``step`` counts optimizer steps from 0 across epochs. ``on_fit_end`` is always called, also when
    training raises, so a callback can remove what it attached to the model.
    """

    def on_fit_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called once before the first epoch."""

    def on_step_begin(self, step: int) -> None:
        """Called before the step's forward pass."""

    def on_after_backward(self, step: int, loss: torch.Tensor) -> None:
        """Called after ``loss.backward()``, before ``optimizer.step()``: gradients are in place."""

    def on_step_end(self, step: int, loss: torch.Tensor) -> None:
        """Called after ``optimizer.step()`` with the step's (attached) training loss."""

    def on_epoch_end(self, stats: EpochStats) -> bool | None:
        """Called after each epoch's validation; return True to stop training."""
        return None

    def on_fit_end(self) -> None:
        """Called once when training ends, however it ends."""


def _overriding(callbacks: Sequence[Callback], hook: str) -> list:
    """The bound ``hook`` of each callback that overrides it."""
    base = getattr(Callback, hook)
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook, base) is not base]


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.device is {device!r} but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(dim=1) == target).sum().item()
    model.train(was_training)
    return loss_sum / len(X), correct / len(X)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: object,
    data: TrainVal,
    *,
    max_epochs: int,
    batch_size: int,
    seed: int,
    metric: str = "val_accuracy",
    callbacks: Sequence[Callback] = (),
    average: WeightAverage | None = None,
) -> FitResult:
    """Trains ``model`` on ``data``'s training split, validating after every epoch.

    ``model`` and ``data`` must already be on the same device. Batches are index slices of a
    permutation drawn from a generator seeded with ``seed``, so a run is repeatable.

    With ``average`` (a :class:`~practices.averaging.WeightAverage` of ``model``), the validation
    metrics are those of the averaged weights, callbacks see the averaged weights in ``model`` during
    ``on_epoch_end`` (so the monitor's checkpoints hold them), and ``model`` keeps them when training
    ends. The training loss stays that of the weights being trained.

    Raises:
        NonFiniteLossError: the training loss became NaN or infinite.
    """
    if metric not in METRICS:
        raise ValueError(f"sweep.metric must be one of {sorted(METRICS)}, got {metric!r}")
    try:
        for start in _overriding(callbacks, "on_fit_start"):
            start(model, optimizer)
        return _fit(model, optimizer, scheduler, data, max_epochs, batch_size, seed, metric, callbacks, average)
    finally:
        for end in _overriding(callbacks, "on_fit_end"):
            end()


def _fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: object,
    data: TrainVal,
    max_epochs: int,
    batch_size: int,
    seed: int,
    metric: str,
    callbacks: Sequence[Callback],
    average: WeightAverage | None,
) -> FitResult:
    sign = 1.0 if METRICS[metric] == "max" else -1.0
    step_begin = _overriding(callbacks, "on_step_begin")
    after_backward = _overriding(callbacks, "on_after_backward")
    step_end = _overriding(callbacks, "on_step_end")
    generator = torch.Generator().manual_seed(seed)
    n_train = len(data.X_train)
    history: list[EpochStats] = []
    best_epoch, best_value, stopped_by = 0, -math.inf * sign, None
    global_step = 0
    model.train()
    for epoch in range(1, max_epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        order = torch.randperm(n_train, generator=generator).to(data.X_train.device)
        loss_sum = torch.zeros((), device=data.X_train.device)
        for step, start in enumerate(range(0, n_train, batch_size)):
            for hook in step_begin:
                hook(global_step)
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(data.X_train[index]), data.y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for hook in after_backward:
                hook(global_step, loss)
            optimizer.step()
            if average is not None:
                average.after_step(model)
            for hook in step_end:
                hook(global_step, loss)
            loss_sum += loss.detach() * len(index)
            global_step += 1
        train_loss = loss_sum.item() / n_train
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(epoch, step, train_loss)
        if average is not None:
            average.after_epoch(model, epoch, data.X_train, batch_size)
            # Validation and the callbacks see the averaged weights; a stop or an error keeps them.
            trained = average.swap_in(model)
        val_loss, val_accuracy = evaluate(model, data.X_val, data.y_val)
        stats = EpochStats(epoch, train_loss, val_loss, val_accuracy, lr)
        history.append(stats)
        value = stats.metric(metric)
        if sign * value > sign * best_value:
            best_epoch, best_value = epoch, value
        if needs_metric(scheduler):
            scheduler.step(value)
        elif scheduler is not None:
            scheduler.step()
        # Every callback sees every epoch (no short-circuit): one asking to stop does not hide the
        # epoch from the others.
        if any([cb.on_epoch_end(stats) for cb in callbacks]):
            stopped_by = "callback"
            break
        if average is not None:
            average.swap_out(model, trained)
    if average is not None:
        average.copy_to(model)  # the weights validated last
    return FitResult(history, metric, best_epoch, best_value, stopped_by)
