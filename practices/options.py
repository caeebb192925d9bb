"""The values the library's training functions accept, as plain data and checks that import no torch:
a config layer (``sweeps.config``) validates a command's keys against them before anything imports
torch, so that bad input is answered in well under a second."""

from __future__ import annotations

import math

__all__ = ["AVERAGING", "CHECKPOINT_POLICIES", "METRICS", "check_averaging", "swa_start"]

# Validation metric -> the direction that is better.
METRICS = {"val_accuracy": "max", "val_loss": "min"}
# Which state_dicts the monitor keeps (practices.monitor.EarlyStopping).
CHECKPOINT_POLICIES = ("best_and_last", "best", "last", "none")
# Weight averaging of practices.averaging.WeightAverage.
AVERAGING = ("none", "ema", "swa")


def swa_start(swa_start_epoch: int | None, max_epochs: int) -> int:
    """The first epoch that SWA averages; ``None`` means the last quarter of ``max_epochs``."""
    if swa_start_epoch is not None:
        return swa_start_epoch
    return math.floor(0.75 * max_epochs) + 1


def check_averaging(
    averaging: str, ema_decay: float, swa_start_epoch: int | None, max_epochs: int | None = None
) -> None:
    """Refuses values that no averaging can use, naming the ``trainer.*`` key.

    Raises:
        ValueError: one line naming the key, the value and what is allowed.
    """
    if averaging not in AVERAGING:
        raise ValueError(f"trainer.averaging must be one of {list(AVERAGING)}, got {averaging!r}")
    if isinstance(ema_decay, bool) or not 0.0 < ema_decay < 1.0:
        raise ValueError(f"trainer.ema_decay must be in (0, 1), got {ema_decay}")
    if swa_start_epoch is None:
        return
    if isinstance(swa_start_epoch, bool) or swa_start_epoch < 1:
        raise ValueError(f"trainer.swa_start_epoch must be >= 1 or null (the last quarter of the epochs), "
                         f"got {swa_start_epoch}")
    if averaging == "swa" and max_epochs is not None and swa_start_epoch > max_epochs:
        raise ValueError(f"trainer.swa_start_epoch={swa_start_epoch} is after trainer.max_epochs={max_epochs}: no "
                         f"epoch would be averaged; use a value in [1, {max_epochs}] or null")
