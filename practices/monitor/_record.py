"""The record of one training run: what the monitor measured, and the summaries read off it.

A :class:`Record` is plain data (lists and dicts of floats). The recorder fills it while training
runs; the diagnoses, the report and the plots only read it, so a hand-made record stands in for a
run in tests.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np
import torch

from practices.train import EpochStats

__all__ = ["LayerStats", "Record", "median"]


def median(values: list[float]) -> float:
    """The median of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """A layer's medians over the sampled steps (NaN where not measured)."""

    layer: str
    grad_norm: float
    update_ratio: float
    dead_fraction: float
    saturated_fraction: float


@dataclasses.dataclass
class Record:
    """Per-epoch numbers, every step's loss, and the measurements of the sampled steps.

    Attributes:
        epochs: each epoch's :class:`~practices.train.EpochStats`.
        step_losses: every optimizer step's training loss, in order.
        sampled_steps: the steps (counted from 0 across epochs) that were sampled.
        sampled_losses: the training loss of each sampled step.
        global_grad_norms: the gradient norm over all parameters, per sampled step.
        grad_norms: per layer (``"<name>:<type>"``), its gradient norm per sampled step.
        update_ratios: per layer, ``|dW| / |W|`` of its weights per sampled step.
        dead_fractions: per ReLU layer, the share of units that were zero for the whole batch.
        saturated_fractions: per tanh/sigmoid layer, the share of outputs at the rails.
        first_layer_filters: the first 2-D conv layer's weights at the end of the run, if any.
    """

    epochs: list[EpochStats] = dataclasses.field(default_factory=list)
    step_losses: list[float] = dataclasses.field(default_factory=list)
    sampled_steps: list[int] = dataclasses.field(default_factory=list)
    sampled_losses: list[float] = dataclasses.field(default_factory=list)
    global_grad_norms: list[float] = dataclasses.field(default_factory=list)
    grad_norms: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    update_ratios: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    dead_fractions: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    saturated_fractions: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    first_layer_filters: torch.Tensor | None = None

    @property
    def initial_loss(self) -> float:
        """The training loss of the first step, before any update: about ``ln(C)`` when all is well."""
        return self.sampled_losses[0] if self.sampled_losses else math.nan

    def layer_stats(self) -> list[LayerStats]:
        """Each parameterized layer's medians, then each activation layer's."""
        nan = math.nan
        rows = [LayerStats(label, median(norms), median(self.update_ratios[label]), nan, nan)
                for label, norms in self.grad_norms.items()]
        rows += [LayerStats(label, nan, nan, median(v), nan) for label, v in self.dead_fractions.items()]
        rows += [LayerStats(label, nan, nan, nan, median(v)) for label, v in self.saturated_fractions.items()]
        return rows

    def epoch_step_losses(self) -> list[np.ndarray]:
        """The step losses cut into one array per epoch; empty when they do not cover the epochs."""
        n_epochs = len(self.epochs)
        if not n_epochs or len(self.step_losses) < n_epochs:
            return []
        return [np.asarray(chunk) for chunk in np.array_split(np.asarray(self.step_losses), n_epochs)]

    def noise(self) -> float:
        """The median over epochs of the step losses' spread around the epoch's linear trend,
        relative to the epoch's mean loss; NaN with fewer than 4 steps an epoch.

        Epochs whose mean loss fell below a tenth of the initial loss are left out: near zero, any
        spread is large relative to the mean and says nothing about the batch size.
        """
        spreads = []
        floor = 0.1 * self.initial_loss if math.isfinite(self.initial_loss) else 0.0
        for losses in self.epoch_step_losses():
            if len(losses) < 4 or not np.all(np.isfinite(losses)) or losses.mean() <= max(floor, 0.0):
                continue
            x = np.arange(len(losses))
            trend = np.polyval(np.polyfit(x, losses, 1), x)
            spreads.append(float(np.std(losses - trend) / losses.mean()))
        return statistics.median(spreads) if spreads else math.nan
