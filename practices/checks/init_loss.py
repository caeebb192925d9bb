"""Loss at initialization: an untrained network should score like guessing by the class prior."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from practices.checks._result import CheckResult, class_covering_subset

__all__ = ["init_loss_check", "guessing_losses"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def guessing_losses(y: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """Cross-entropy of guessing: ``(by the class prior, uniformly)``, that is the prior's entropy
    and ``ln(C)``; both are ``ln(C)`` for balanced classes."""
    counts = torch.bincount(y.detach().cpu(), minlength=n_classes).double()
    prior = counts / counts.sum()
    entropy = float(-(prior[prior > 0] * prior[prior > 0].log()).sum())
    return entropy, math.log(n_classes)


def init_loss_check(
    make_model: Callable[[], nn.Module],
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    n_classes: int | None = None,
    n_inits: int = 3,
    n_samples: int = 256,
    tolerance: float = 0.1,
    seed: int = 0,
) -> CheckResult:
    """Mean loss of the untrained network, over ``n_inits`` fresh initializations, against guessing.

    An untrained classifier should predict about uniformly (loss ``ln(C)``) or by the class prior
    (the prior's entropy ``H``); the check passes when the mean loss lies in
    ``[H * (1 - tolerance), ln(C) * (1 + tolerance)]``. A loss far above means overconfident
    initial outputs (a last layer initialized too large, a missing softmax scaling, a wrong loss);
    far below means the labels leak into the inputs or the loss is not what it seems.

    Args:
        make_model: builds a fresh model; it is called ``n_inits`` times, each after
            ``torch.manual_seed(seed + i)``. Models run in eval mode (dropout off).
        X, y: samples and integer labels (the training split; ``n_samples`` are used).
        loss_fn: ``loss_fn(outputs, y)``; the expected values assume cross-entropy.
        n_classes: ``C``; ``None`` takes ``y.max() + 1``.
        n_inits: fresh initializations to average over.
        n_samples: samples the loss is averaged over, covering every class.
        tolerance: relative slack around the band of guessing losses.
        seed: seeds the initializations and the choice of samples.

    Returns:
        A :class:`CheckResult` whose ``value`` is the mean loss; ``details`` holds ``ln(C)``,
        the prior's entropy and each initialization's loss.
    """
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    index = class_covering_subset(y, n_samples, seed)
    X_sub, y_sub = X[index], y[index]
    entropy, uniform = guessing_losses(y, n_classes)
    losses = []
    for i in range(n_inits):
        torch.manual_seed(seed + i)
        model = make_model().eval()
        with torch.no_grad():
            losses.append(float(loss_fn(model(X_sub.to(_device(model))), y_sub.to(_device(model)))))
    where = _output_layer(model)
    value = sum(losses) / len(losses)
    low, high = entropy * (1 - tolerance), uniform * (1 + tolerance)
    details = {"ln_C": uniform, "prior_entropy": entropy, "n_classes": n_classes, "losses": losses,
               "band": [low, high], "n_samples": len(index)}
    if low <= value <= high:
        return CheckResult("init_loss", True, value, tolerance, where,
                           f"initial loss {value:.4g} matches guessing (ln(C) = {uniform:.4g})", details)
    if not math.isfinite(value) or value > high:
        advice = (f"the untrained network's loss {value:.4g} is far above guessing (ln({n_classes}) = {uniform:.4g}): "
                  f"its initial outputs are overconfident; scale down the initialization of the last layer ({where}), "
                  "check the loss takes logits (no softmax before cross-entropy) and the inputs are normalized")
    else:
        advice = (f"the untrained network's loss {value:.4g} is far below guessing (prior entropy {entropy:.4g}): "
                  "the labels may leak into the inputs, or the loss is not cross-entropy over the classes")
    return CheckResult("init_loss", False, value, tolerance, where, advice, details)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _output_layer(model: nn.Module) -> str | None:
    """The last module (in registration order) that holds parameters of its own: usually the
    layer that produces the outputs."""
    last = None
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            last = f"{name or 'model'} ({type(module).__name__})"
    return last
