"""Learning-rate schedules (PRACTICES.md section 4), each built on a torch.optim.lr_scheduler class.

Every schedule steps once per epoch. ``plateau`` steps with the validation metric; the training
loop tells them apart with :func:`needs_metric`.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer, lr_scheduler

__all__ = ["constant", "step", "exponential", "inverse_time", "plateau", "cosine", "needs_metric"]


def constant(optimizer: Optimizer) -> lr_scheduler.LRScheduler:
    """``eta_t = eta_0``."""
    return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def step(optimizer: Optimizer, step_epochs: int = 10, factor: float = 0.5) -> lr_scheduler.LRScheduler:
    """Step decay: every ``step_epochs`` epochs multiply the learning rate by ``factor``."""
    if step_epochs < 1:
        raise ValueError(f"schedule.step_epochs must be >= 1, got {step_epochs}")
    return lr_scheduler.StepLR(optimizer, step_size=step_epochs, gamma=factor)


def exponential(optimizer: Optimizer, k: float = 0.05) -> lr_scheduler.LRScheduler:
    """Exponential decay per epoch: ``eta_t = eta_0 * exp(-k t)``."""
    return lr_scheduler.ExponentialLR(optimizer, gamma=math.exp(-k))


def inverse_time(optimizer: Optimizer, k: float = 0.1) -> lr_scheduler.LRScheduler:
    """1/t decay per epoch: ``eta_t = eta_0 / (1 + k t)``."""
    if k < 0:
        raise ValueError(f"schedule.k must be >= 0, got {k}")
    return lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 / (1.0 + k * epoch))


def plateau(
    optimizer: Optimizer, factor: float = 0.5, patience: int = 3, mode: str = "max", min_lr: float = 0.0
) -> lr_scheduler.ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` once the validation metric has not improved for
    ``patience`` epochs. ``mode`` is ``max`` (or ``maximize``) for a metric to maximize, ``min``
    (``minimize``) otherwise.
    """
    modes = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}
    if mode not in modes:
        raise ValueError(f"schedule.mode must be one of {sorted(modes)}, got {mode!r}")
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode=modes[mode], factor=factor, patience=patience, min_lr=min_lr)


def cosine(
    optimizer: Optimizer, n_epochs: int, warmup_epochs: int = 0, min_lr: float = 0.0
) -> lr_scheduler.LRScheduler:
    """Cosine annealing from ``eta_0`` to ``min_lr`` over ``n_epochs``, after an optional linear
    warmup over ``warmup_epochs`` epochs starting from ``eta_0 / (warmup_epochs + 1)``.
    """
    if not 0 <= warmup_epochs < n_epochs:
        raise ValueError(f"schedule.warmup_epochs must be in [0, {n_epochs}), got {warmup_epochs}")
    anneal = lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs - warmup_epochs, eta_min=min_lr)
    if warmup_epochs == 0:
        return anneal
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup_epochs + 1), total_iters=warmup_epochs)
    return lr_scheduler.SequentialLR(optimizer, [warmup, anneal], milestones=[warmup_epochs])


def needs_metric(scheduler: object) -> bool:
    """Whether ``scheduler.step`` takes the validation metric."""
    return isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)
