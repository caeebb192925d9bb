"""Early stopping with checkpoints: the best epoch so far, its weights, and the last weights."""

from __future__ import annotations

import torch
from torch import nn

from practices.options import CHECKPOINT_POLICIES, METRICS
from practices.train import EpochStats

__all__ = ["CHECKPOINT_POLICIES", "EarlyStopping", "state_on_cpu"]


def state_on_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state_dict on the CPU: it loads with ``torch.load(weights_only=True)``."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class EarlyStopping:
    """Follows the validation metric epoch by epoch; keeps the best epoch's and the last weights.

    Args:
        metric: the validation metric that picks the best epoch, one of :data:`practices.options.METRICS`.
        patience: stop after this many epochs without improvement; None never stops.
        checkpoints: which state_dicts to keep, one of :data:`CHECKPOINT_POLICIES`.
        patience_from_epoch: the first epoch that counts towards ``patience`` (the best epoch is
            followed from the first either way): SWA's start, so that a run is not stopped on the
            plateau before its weights are averaged. 1 counts every epoch.
    """

    def __init__(self, metric: str = "val_accuracy", patience: int | None = None,
                 checkpoints: str = "best_and_last", patience_from_epoch: int = 1) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        if checkpoints not in CHECKPOINT_POLICIES:
            raise ValueError(f"checkpoints must be one of {list(CHECKPOINT_POLICIES)}, got {checkpoints!r}")
        if patience_from_epoch < 1:
            raise ValueError(f"patience_from_epoch must be >= 1, got {patience_from_epoch}")
        self.metric, self.patience, self.checkpoints = metric, patience, checkpoints
        self.patience_from_epoch = patience_from_epoch
        self._sign = 1.0 if METRICS[metric] == "max" else -1.0
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_state: dict[str, torch.Tensor] | None = None
        self.stopped_epoch: int | None = None
        self._epochs_without_improvement = 0

    def update(self, stats: EpochStats, model: nn.Module | None) -> bool:
        """Takes an epoch's numbers and the weights they were measured on; True means stop."""
        value = stats.metric(self.metric)
        if self.best_value is None or self._sign * value > self._sign * self.best_value:
            self.best_epoch, self.best_value = stats.epoch, value
            self._epochs_without_improvement = 0
            if self.checkpoints in ("best_and_last", "best"):
                assert model is not None, "a checkpoint needs the model"
                self.best_state = state_on_cpu(model)
        elif stats.epoch >= self.patience_from_epoch:
            self._epochs_without_improvement += 1
        if self.patience is not None and self._epochs_without_improvement >= self.patience:
            self.stopped_epoch = stats.epoch
            return True
        return False

    def finish(self, model: nn.Module) -> None:
        """Keeps the last weights, where the policy says so."""
        if self.checkpoints in ("best_and_last", "last"):
            self.last_state = state_on_cpu(model)
