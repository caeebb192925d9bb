"""Models and datasets that tests plant into sweeps through ``_target_``."""

import numpy as np
import torch
from torch import nn


class FailsInForward(nn.Module):
    """Builds fine, then raises in every forward pass: each trial fails with an exception."""

    def __init__(self, in_shape, n_classes):
        super().__init__()
        self.linear = nn.Linear(int(np.prod(in_shape)), n_classes)

    def forward(self, x):
        raise RuntimeError("planted failure in forward")


class FailsInTraining(FailsInForward):
    """Passes the build check's forward pass (no gradients), then raises in every forward pass that
    trains: each trial fails with an exception, as a model with a bug in its training path."""

    def forward(self, x):
        if torch.is_grad_enabled():
            raise RuntimeError("planted failure in forward")
        return self.linear(x.flatten(1))


class WrongShape(FailsInForward):
    """Builds and runs, but returns one logit per sample instead of one per class."""

    def forward(self, x):
        return self.linear(x.flatten(1))[:, :1]


def blobs(n_per_class: int = 40, n_classes: int = 3, seed: int = 0):
    """A tiny, easily separable dataset returned as tensors, as a user's own loader may."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(n_classes, 5))
    X = np.concatenate([c + rng.normal(size=(n_per_class, 5)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return torch.from_numpy(X), torch.from_numpy(y)


def leaky_blobs(n_leaks: int = 3):
    """:func:`blobs` with ``n_leaks`` test samples overwritten by copies of training samples (and
    their labels), for the default split (0.2 / 0.2, seed 0): planted leakage across splits."""
    from practices.data import split_indices

    X, y = (t.numpy().copy() for t in blobs())
    split = split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)
    for test_i, train_i in zip(split.test[:n_leaks], split.train[:n_leaks]):
        X[test_i], y[test_i] = X[train_i], y[train_i]
    return X, y


def subprocess_env() -> dict:
    """The environment for a child ``python -m sweeps...``: this checkout first on PYTHONPATH."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


class ScaledBackwardLinear(torch.autograd.Function):
    """``x @ w.T + b`` with a hand-written backward whose weight gradient is scaled by ``factor``."""

    @staticmethod
    def forward(ctx, x, weight, bias, factor):
        ctx.save_for_backward(x, weight)
        ctx.factor = factor
        return x @ weight.t() + bias

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        return grad_out @ weight, ctx.factor * grad_out.t() @ x, grad_out.sum(0), None


class BrokenBackward(nn.Module):
    """A one-hidden-layer net whose custom hidden layer's weight gradient is scaled by ``factor``
    (1.0 is correct). Accepts the mlp config's keys so that only ``_target_`` needs overriding."""

    def __init__(self, in_shape, n_classes, width=16, depth=1, dropout=0.0, activation="tanh", factor=-1.0):
        super().__init__()
        n_in = int(np.prod(in_shape))
        self.hidden_weight = nn.Parameter(torch.randn(width, n_in) / np.sqrt(n_in))
        self.hidden_bias = nn.Parameter(torch.zeros(width))
        self.out = nn.Linear(width, n_classes)
        self.factor = factor

    def forward(self, x):
        h = ScaledBackwardLinear.apply(x.flatten(1), self.hidden_weight, self.hidden_bias, self.factor)
        return self.out(torch.tanh(h))
