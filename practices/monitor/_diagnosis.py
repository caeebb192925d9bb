"""A finding about a training run, and the advice of PRACTICES.md that goes with each kind."""

from __future__ import annotations

import dataclasses

__all__ = ["ADVICE", "Diagnosis", "make_diagnosis"]

ADVICE = {
    "diverged": "Lower the learning rate (by 3-10x), add gradient clipping or warmup, and check the data "
                "for extreme values.",
    "vanishing_gradients": "Use ReLU-like activations instead of sigmoid/tanh, a better initialization "
                           "(He/Xavier), normalization layers, or a shallower net.",
    "lr_too_high": "The learning rate is too high: lower it, or decay it sooner (step or plateau schedule).",
    "lr_too_low": "The learning rate is too low: raise it (an update ratio around 1e-3 is healthy).",
    "noisy_loss": "The loss curve is noisy: use a larger mini-batch for smoother gradients, or a lower "
                  "learning rate.",
    "overfitting": "Training and validation loss drift apart: add regularization (weight decay, dropout, "
                   "augmentation), get more data, or stop early (use the best-epoch checkpoint).",
    "underfitting": "Training and validation loss are close but high: use less regularization, a larger "
                    "model, or train longer.",
    "update_ratio": "An update ratio |dW|/|W| around 1e-3 is healthy; far above or below says the learning "
                    "rate is off for these layers.",
    "dead_relu": "Many ReLU units never fire: lower the learning rate, check the initialization and biases, "
                 "or use a leaky ReLU / GELU.",
    "saturation": "Many tanh/sigmoid outputs sit at their rails, where gradients vanish: normalize the "
                  "inputs, use a better initialization or ReLU-like activations.",
}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """One finding: what, the numbers behind it, and what to do about it.

    Attributes:
        code: a short label, e.g. ``overfitting``.
        severity: ``error`` (the run is broken) or ``warning``.
        summary: one sentence with the numbers.
        advice: what PRACTICES.md suggests.
        numbers: the numbers behind it, by name.
        epoch: the epoch it refers to, when there is one.
    """

    code: str
    severity: str
    summary: str
    advice: str
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)
    epoch: int | None = None


def make_diagnosis(code: str, summary: str, numbers: dict[str, float], epoch: int | None = None,
                   severity: str = "warning") -> Diagnosis:
    """A :class:`Diagnosis` of kind ``code`` with its advice from :data:`ADVICE`."""
    return Diagnosis(code, severity, summary, ADVICE[code], numbers, epoch)
