"""Learning-rate range test (Smith, 2017, "Cyclical Learning Rates for Training Neural Networks").

Raise the learning rate exponentially over a few hundred steps on the training split, record the
loss, and suggest a range: from where the loss falls fastest up to safely below where it blows up.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from practices.data import TrainVal

__all__ = ["LRRangeResult", "lr_range_test", "classification_loss"]


@dataclasses.dataclass
class LRRangeResult:
    """The recorded curve and the suggested range.

    Attributes:
        lrs: learning rate of each step.
        losses: smoothed loss after each step (exponential moving average, bias-corrected).
        steepest_lr: where the smoothed loss falls fastest per unit of log learning rate.
        min_loss_lr: where the smoothed loss is lowest.
        diverged_lr: where the loss blew up (non-finite, or above ``diverge_factor`` times its
            minimum), or None when it never did.
        low: suggested lower bound (``steepest_lr``, kept at most ``high / 10``).
        high: suggested upper bound (half of ``min_loss_lr``: the smoothed curve lags the raw
            loss, and the lowest loss sits close to the edge of stability).
    """

    lrs: list[float]
    losses: list[float]
    steepest_lr: float
    min_loss_lr: float
    diverged_lr: float | None
    low: float
    high: float


def classification_loss(data: TrainVal, batch_size: int, seed: int) -> Callable[[nn.Module, int], torch.Tensor]:
    """A step's cross-entropy on shuffled mini-batches of ``data``'s training split."""
    generator = torch.Generator().manual_seed(seed)
    n_train = len(data.X_train)
    order = torch.randperm(n_train, generator=generator)

    def loss(model: nn.Module, step: int) -> torch.Tensor:
        nonlocal order
        start = (step * batch_size) % n_train
        if start + batch_size > n_train:
            order = torch.randperm(n_train, generator=generator)
            start = 0
        index = order[start : start + batch_size].to(data.X_train.device)
        return F.cross_entropy(model(data.X_train[index]), data.y_train[index])

    return loss


def lr_range_test(
    model: nn.Module,
    make_optimizer: Callable[..., torch.optim.Optimizer],
    loss_fn: Callable[[nn.Module, int], torch.Tensor],
    *,
    lr_min: float = 1e-6,
    lr_max: float = 10.0,
    n_steps: int = 200,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
) -> LRRangeResult:
    """Runs the range test on a copy of ``model`` (the model itself is left untouched).

    Args:
        model: the network.
        make_optimizer: called as ``make_optimizer(params, lr=...)``, e.g. a ``functools.partial``
            of ``torch.optim.SGD`` with momentum.
        loss_fn: ``loss_fn(model, step)`` returns the training loss of one mini-batch.
        lr_min, lr_max: the learning rate of the first and of the last step.
        n_steps: steps from ``lr_min`` to ``lr_max``.
        smoothing: weight of the newest loss in the moving average.
        diverge_factor: the test stops once the smoothed loss exceeds this multiple of its minimum.
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"lr_range_test needs 0 < lr_min < lr_max, got lr_min={lr_min}, lr_max={lr_max}")
    if n_steps < 10:
        raise ValueError(f"lr_range_test.n_steps must be >= 10, got {n_steps}")
    trial_model = copy.deepcopy(model).train()
    optimizer = make_optimizer(trial_model.parameters(), lr=lr_min)
    growth = (lr_max / lr_min) ** (1.0 / (n_steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best, diverged_lr = 0.0, math.inf, None
    for step in range(n_steps):
        lr = lr_min * growth**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(trial_model, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            diverged_lr = lr
            break
        average = smoothing * value + (1 - smoothing) * average
        smoothed = average / (1 - (1 - smoothing) ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if step > 0 and smoothed > diverge_factor * best:
            diverged_lr = lr
            break
    return _suggest(lrs, losses, diverged_lr)


def _suggest(lrs: list[float], losses: list[float], diverged_lr: float | None) -> LRRangeResult:
    if len(lrs) < 3:
        raise ValueError("lr_range_test: the loss blew up within the first steps; lower lr_min")
    i_min = min(range(len(losses)), key=losses.__getitem__)
    logs = [math.log(lr) for lr in lrs]
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, max(2, i_min))]
    steepest_lr = lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)] if slopes else lrs[0]
    high = lrs[i_min] / 2
    low = min(steepest_lr, high / 10)
    return LRRangeResult(lrs, losses, steepest_lr, lrs[i_min], diverged_lr, low, high)
