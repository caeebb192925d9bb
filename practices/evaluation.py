"""Per-sample outcomes of a classifier: what a bootstrap over test samples resamples."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["per_sample"]


@torch.no_grad()
def per_sample(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's cross-entropy and whether its prediction is right, in eval mode.

    Returns:
        ``(losses, correct)``: float64 and bool arrays of ``len(X)``; their means are the loss and
        accuracy that :func:`practices.train.evaluate` reports.
    """
    was_training = model.training
    model.eval()
    losses, correct = [], []
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size])
        target = y[start : start + batch_size]
        losses.append(F.cross_entropy(logits, target, reduction="none").double().cpu().numpy())
        correct.append((logits.argmax(dim=1) == target).cpu().numpy())
    model.train(was_training)
    return np.concatenate(losses), np.concatenate(correct)
