"""Weight averaging (Polyak averaging) through ``torch.optim.swa_utils``.

Two forms, both an :class:`~torch.optim.swa_utils.AveragedModel` next to the trained model:

- ``ema``: an exponential moving average of the weights, updated after every optimizer step
  (``get_ema_multi_avg_fn``): ``w_ema <- decay * w_ema + (1 - decay) * w``, starting from the weights
  after the first step.
- ``swa``: the equal mean of the weights at the end of each epoch from ``swa_start_epoch`` on
  (stochastic weight averaging, Izmailov et al. 2018). The learning rate keeps following the
  configured schedule: no ``SWALR`` is switched in (pick ``schedule=constant`` for the SWA paper's
  constant-rate phase).

Where the model has BatchNorm layers, their running statistics are recomputed for the averaged
weights with ``update_bn`` (one pass over the training samples) before every validation: statistics
gathered along the path of the raw weights do not fit their average.

:func:`practices.train.fit` takes a :class:`WeightAverage`: it validates the averaged weights, lets
callbacks (the monitor's checkpoints) see them in ``on_epoch_end``, and leaves them in the model when
training ends.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from practices.options import AVERAGING, check_averaging, swa_start  # re-exported: their home imports no torch

__all__ = ["AVERAGING", "WeightAverage", "check_averaging", "swa_start"]

def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class WeightAverage:
    """An averaged copy of ``model``'s weights, kept up to date by :func:`practices.train.fit`.

    Args:
        model: the model being trained; the average starts as a deep copy of it.
        averaging: ``ema`` or ``swa``.
        ema_decay: the EMA's decay per optimizer step, in (0, 1).
        swa_start_epoch: the first epoch whose end-of-epoch weights SWA averages (from 1).
    """

    def __init__(self, model: nn.Module, averaging: str, *, ema_decay: float = 0.999, swa_start_epoch: int = 1) -> None:
        check_averaging(averaging, ema_decay, swa_start_epoch)
        if averaging == "none":
            raise ValueError("trainer.averaging=none averages nothing: pass no WeightAverage")
        self.averaging, self.ema_decay, self.swa_start_epoch = averaging, ema_decay, swa_start_epoch
        multi_avg_fn = get_ema_multi_avg_fn(ema_decay) if averaging == "ema" else None
        # use_buffers=False: buffers are copied from the model; BatchNorm's are recomputed by update_bn.
        self.averaged = AveragedModel(model, multi_avg_fn=multi_avg_fn)
        self.has_batchnorm = _has_batchnorm(model)

    @property
    def n_averaged(self) -> int:
        """How many weight vectors went into the average (steps for EMA, epochs for SWA)."""
        return int(self.averaged.n_averaged)

    @property
    def module(self) -> nn.Module:
        """The averaged weights, as a module shaped like the trained model."""
        return self.averaged.module

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step: the EMA takes the new weights."""
        if self.averaging == "ema":
            self.averaged.update_parameters(model)

    def after_epoch(self, model: nn.Module, epoch: int, X_train: torch.Tensor, batch_size: int) -> None:
        """Called after each epoch's training: SWA takes the weights from ``swa_start_epoch`` on;
        BatchNorm statistics are recomputed for the averaged weights over ``X_train``."""
        if self.averaging == "swa" and epoch >= self.swa_start_epoch:
            self.averaged.update_parameters(model)
        if self.has_batchnorm and self.n_averaged:
            batches = [X_train[start : start + batch_size] for start in range(0, len(X_train), batch_size)]
            update_bn(batches, self.averaged.module)

    def swap_in(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """Loads the averaged weights into ``model`` and returns its own state, for :meth:`swap_out`;
        None (and ``model`` unchanged) while nothing has been averaged yet."""
        if not self.n_averaged:
            return None
        trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        return trained

    def swap_out(self, model: nn.Module, trained: dict[str, torch.Tensor] | None) -> None:
        """Gives ``model`` back the state that :meth:`swap_in` returned."""
        if trained is not None:
            model.load_state_dict(trained)

    def copy_to(self, model: nn.Module) -> None:
        """Loads the averaged weights (and buffers) into ``model``, in place: an optimizer holding
        its parameters keeps working. Does nothing before anything was averaged."""
        if self.n_averaged:
            model.load_state_dict(self.averaged.module.state_dict())
