"""Optimizers whose every hyperparameter is a scalar, so that a search space can name each one."""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["adam"]


def adam(params: Iterable[torch.nn.Parameter], lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its ``betas`` pair as two scalars, ``beta1`` and ``beta2``.

    Args:
        params: the parameters to optimize.
        lr: the learning rate.
        beta1: the decay rate of the running mean of gradients, in [0, 1).
        beta2: the decay rate of the running mean of squared gradients, in [0, 1).
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty, or decoupled weight decay (AdamW) with ``decoupled_weight_decay``.
        decoupled_weight_decay: True makes it AdamW.

    Raises:
        ValueError: a beta outside [0, 1), as torch.optim.Adam says it (``beta parameter at index 0``
            is ``beta1``).
    """
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                            decoupled_weight_decay=decoupled_weight_decay)
