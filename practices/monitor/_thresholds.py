"""When the divergence guard stops a run and when each diagnosis fires."""

from __future__ import annotations

import dataclasses

__all__ = ["Thresholds"]


@dataclasses.dataclass
class Thresholds:
    """When a diagnosis fires. The defaults follow PRACTICES.md, section 3.

    Attributes:
        loss_blowup_factor: a training loss above this many times the initial loss is divergence.
        grad_blowup_factor: a global gradient norm above this many times the median of the earlier
            samples is divergence (checked once 5 samples exist).
        vanishing_ratio: the first layer's median gradient norm below this fraction of the last
            layer's means vanishing gradients.
        collapse_ratio: the global gradient norm falling below this fraction of its early level while
            the training loss stays above half its initial value also means vanishing gradients.
        update_ratio_low: per-layer median ``|dW|/|W|`` below this is flagged.
        update_ratio_high: per-layer median ``|dW|/|W|`` above this is flagged.
        lr_low_update_ratio: median update ratio over all layers below this, with the training loss
            falling by less than ``slow_progress`` of its initial value, means the learning rate is
            too low.
        slow_progress: see ``lr_low_update_ratio``.
        jump_factor: an epoch's training loss above this many times the previous epoch's is a jump.
        oscillation_fraction: with at least 4 epochs, a training loss that rose in this share of the
            epochs or more oscillates.
        noise: the median over epochs of the within-epoch step-loss spread around its trend, relative
            to the epoch's mean loss, above this is a noisy curve.
        overfit_epochs: validation loss rising for this many epochs after its minimum while the
            training loss falls is overfitting.
        overfit_rise: relative rise of the validation loss over its minimum that counts.
        underfit_loss_fraction: a best training loss above this fraction of the initial loss is high.
        underfit_gap: training and validation loss within this relative gap are close.
        dead_relu: a ReLU layer with more than this fraction of dead units is flagged.
        saturation: a tanh/sigmoid layer with more than this fraction of saturated outputs is flagged.
    """

    loss_blowup_factor: float = 10.0
    grad_blowup_factor: float = 1000.0
    vanishing_ratio: float = 1e-3
    collapse_ratio: float = 1e-3
    update_ratio_low: float = 1e-4
    update_ratio_high: float = 1e-2
    lr_low_update_ratio: float = 1e-4
    slow_progress: float = 0.5
    jump_factor: float = 1.5
    oscillation_fraction: float = 0.4
    noise: float = 0.5
    overfit_epochs: int = 3
    overfit_rise: float = 0.05
    underfit_loss_fraction: float = 0.5
    underfit_gap: float = 0.1
    dead_relu: float = 0.5
    saturation: float = 0.3
