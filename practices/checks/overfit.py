"""Overfit a tiny subset: a network that cannot memorize a few samples has a bug."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from practices.checks._result import CheckResult, class_covering_subset

__all__ = ["overfit_check"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def overfit_check(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    n_samples: int = 10,
    max_steps: int = 300,
    lr: float = 0.01,
    loss_threshold: float = 0.01,
    seed: int = 0,
) -> CheckResult:
    """Trains a copy of ``model`` on ``n_samples`` samples until it memorizes them.

    The subset covers as many classes as possible. Training is full-batch with a fixed Adam
    (``lr``), in eval mode (dropout off) and without weight decay, so that the check tests the
    model and the loss, not the trial's optimizer or learning rate. It stops as soon as the loss
    is below ``loss_threshold`` and every sample is classified correctly, or after ``max_steps``.

    Args:
        model: the untrained model; it is copied, never changed.
        X, y: samples and integer labels (the training split).
        loss_fn: ``loss_fn(outputs, y)``, a scalar.
        n_samples: size of the subset (5 to 20 is the usual range).
        max_steps: the step budget.
        lr: Adam's learning rate.
        loss_threshold: the training loss that counts as near zero.
        seed: picks the subset.

    Returns:
        A :class:`CheckResult` whose ``value`` is the loss reached; ``details`` holds the steps
        used and how many samples were classified correctly.
    """
    index = class_covering_subset(y, n_samples, seed)
    model = copy.deepcopy(model).eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    X_sub, y_sub = X[index].to(device), y[index].to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr) if any(True for _ in model.parameters()) else None
    loss_value, n_correct, steps = math.inf, 0, 0
    for steps in range(max_steps + 1):
        outputs = model(X_sub)
        loss = loss_fn(outputs, y_sub)
        loss_value = loss.item()
        n_correct = int((outputs.argmax(dim=1) == y_sub).sum())
        if (loss_value < loss_threshold and n_correct == len(index)) or not math.isfinite(loss_value):
            break
        if steps == max_steps or optimizer is None:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    passed = loss_value < loss_threshold and n_correct == len(index)
    details = {"steps": steps, "max_steps": max_steps, "n_correct": n_correct, "n_samples": len(index),
               "n_classes": int(torch.unique(y_sub).numel()), "lr": lr}
    if passed:
        return CheckResult("overfit", True, loss_value, loss_threshold, None,
                           f"memorized {len(index)} samples in {steps} steps (loss {loss_value:.3g})", details)
    advice = (f"the model could not memorize {len(index)} samples in {steps} steps (loss {loss_value:.3g}, "
              f"{n_correct}/{len(index)} correct): check that its output depends on its input, that outputs and "
              "labels line up, that no layer blocks the gradient, and that it has enough capacity for the task")
    return CheckResult("overfit", False, loss_value, loss_threshold, None, advice, details)
