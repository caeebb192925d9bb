"""Gradient check: analytic gradients against central differences, in double precision."""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from practices.checks._result import CheckResult, class_covering_subset

__all__ = ["gradient_check"]

_EPS = float(torch.finfo(torch.float64).eps)
# Rounding of a float64 loss evaluation: a few ulps per evaluation, with a margin for the
# accumulation over many layers.
_ROUNDING_ULPS = 16.0

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _entries(grad: torch.Tensor, n_entries: int, generator: torch.Generator) -> list[int]:
    """Flat indices of ``n_entries`` entries: half the largest analytic gradients (where a wrong
    backward shows most), half drawn at random from the rest (where a zero gradient may hide)."""
    numel = grad.numel()
    if numel <= n_entries:
        return list(range(numel))
    n_top = n_entries // 2
    top = torch.topk(grad.detach().abs().reshape(-1), n_top).indices.tolist()
    taken = set(top)
    rest: list[int] = []
    while len(rest) < n_entries - n_top:  # draws, not a permutation: tensors may hold millions
        i = int(torch.randint(numel, (1,), generator=generator))
        if i not in taken:
            taken.add(i)
            rest.append(i)
    return top + rest


def gradient_check(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    n_samples: int = 4,
    n_entries: int = 10,
    step: float = 1e-5,
    threshold: float = 1e-4,
    tiny: float | None = None,
    seed: int = 0,
) -> CheckResult:
    """Compares the analytic gradient of every parameter tensor with central differences.

    The check runs on a float64 copy of ``model`` in eval mode (dropout off; the caller's model is
    left untouched), on ``n_samples`` samples covering as many classes as possible, with the plain
    loss (no regularization). For a sample of ``n_entries`` entries of each parameter tensor it
    computes ``n = (f(w+h) - f(w-h)) / 2h`` and the relative error ``|a - n| / max(|a|, |n|, tiny)``.

    Kinks (ReLU, max pooling): an entry whose one-sided differences ``(f(w+h) - f(w)) / h`` and
    ``(f(w) - f(w-h)) / h`` disagree by more than ``threshold`` times the gradient's size is left
    out: a kink between ``w-h`` and ``w+h`` moves the central difference by half that disagreement,
    so it alone could explain an error above the threshold. The decision uses the numerical values
    only, so it cannot hide a wrong backward.

    Args:
        model: any ``nn.Module``, custom layers and ``torch.autograd.Function``s included; it
            must run in float64.
        X, y: samples and integer labels (the training split; a few are picked).
        loss_fn: ``loss_fn(outputs, y)``, a scalar.
        n_samples: samples in the batch the loss is computed on.
        n_entries: entries checked per parameter tensor.
        step: ``h``, absolute, on each entry.
        threshold: the largest relative error that passes.
        tiny: floor of the denominator; ``None`` derives it from the rounding noise of the finite
            differences (gradients too small to be measured to ``threshold`` are compared on an
            absolute scale).
        seed: picks the samples and the random entries.

    Returns:
        A :class:`CheckResult` whose ``value`` is the worst relative error and ``where`` the
        parameter it was found in; ``details`` holds each parameter's worst error and the counts
        of checked and skipped (kink) entries.
    """
    index = class_covering_subset(y, n_samples, seed)
    X64, y64 = X[index].detach().to("cpu", torch.float64), y[index].detach().to("cpu")
    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    named = [(name, p) for name, p in model64.named_parameters() if p.requires_grad]
    loss = loss_fn(model64(X64), y64)
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)

    def f() -> float:
        return float(loss_fn(model64(X64), y64))

    generator = torch.Generator().manual_seed(seed)
    worst: dict[str, float] = {}
    n_checked = n_skipped = 0
    with torch.no_grad():
        f0 = f()
        noise = _ROUNDING_ULPS * _EPS * max(abs(f0), 1.0) / step
        floor = tiny if tiny is not None else noise / threshold
        for (name, param), grad in zip(named, grads):
            grad = torch.zeros_like(param) if grad is None else grad
            errors = []
            for flat in _entries(grad, n_entries, generator):
                at = tuple(int(i) for i in np.unravel_index(flat, tuple(param.shape)))
                original = param[at].item()
                param[at] = original + step
                f_plus = f()
                param[at] = original - step
                f_minus = f()
                param[at] = original
                numeric = (f_plus - f_minus) / (2 * step)
                one_sided_gap = abs((f_plus - f0) - (f0 - f_minus)) / step
                if one_sided_gap > threshold * max(abs(numeric), floor):
                    n_skipped += 1
                    continue
                analytic = grad[at].item()
                error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)
                errors.append(error if math.isfinite(error) else math.inf)
            n_checked += len(errors)
            if errors:
                worst[name] = max(errors)
    return _result(worst, threshold, n_checked, n_skipped, floor, step, len(index))


def _result(
    worst: dict[str, float], threshold: float, n_checked: int, n_skipped: int, floor: float, step: float, n_samples: int
) -> CheckResult:
    details = {
        "per_parameter": worst,
        "entries_checked": n_checked,
        "entries_skipped_at_kinks": n_skipped,
        "tiny": floor,
        "step": step,
        "n_samples": n_samples,
    }
    if not worst:
        return CheckResult("gradient", True, 0.0, threshold, None,
                           "no entry could be checked: every one straddled a kink or had no gradient", details)
    where = max(worst, key=worst.get)
    value = worst[where]
    if not math.isfinite(value) or value > threshold:
        advice = (f"the backward pass of {where} disagrees with finite differences (relative error {value:.3g} > "
                  f"{threshold:.3g}): check custom autograd Functions and backward code, in-place operations, "
                  "and layers that detach or rescale gradients")
        return CheckResult("gradient", False, value, threshold, where, advice, details)
    return CheckResult("gradient", True, value, threshold, where,
                       f"analytic gradients match finite differences (worst {value:.3g} at {where})", details)
