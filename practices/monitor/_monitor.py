"""The monitor: a training-loop callback that records a run, guards it against divergence, stops it
early with checkpoints, and diagnoses it. It only wires the four parts together."""

from __future__ import annotations

import torch
from torch import nn

from practices.monitor._diagnoses import diagnose
from practices.monitor._diagnosis import Diagnosis
from practices.monitor._divergence import DivergenceGuard
from practices.monitor._record import LayerStats, Record
from practices.monitor._recording import Recorder
from practices.monitor._stopping import EarlyStopping
from practices.monitor._thresholds import Thresholds
from practices.train import Callback, EpochStats, NonFiniteLossError

__all__ = ["Monitor"]


def _part(part: str, name: str) -> property:
    """An attribute of the monitor that lives in one of its parts (read and write)."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value),
                    doc=f"``{part}.{name}``")


class Monitor(Callback):
    """Watches a run of :func:`practices.train.fit`; pass it in ``callbacks``.

    One monitor watches one run. Its forward hooks are attached only for the sampled steps and are
    all removed when the run ends, however it ends. What it measured is in :attr:`record` (its
    fields are also attributes of the monitor: ``monitor.epochs``, ``monitor.grad_norms``, ...).

    Args:
        metric: the validation metric that picks the best epoch and drives early stopping, one of
            :data:`practices.options.METRICS`.
        every_n_steps: sample gradients, update ratios and activations every this many steps.
        patience: stop after this many epochs without improvement of ``metric``; None never stops.
        checkpoints: which state_dicts to keep, one of :data:`CHECKPOINT_POLICIES`.
        thresholds: when diagnoses fire; defaults to :class:`Thresholds`.
        stop_on_divergence: raise :class:`Diverged` as soon as training diverges.
        patience_from_epoch: the first epoch that counts towards ``patience`` (SWA's start epoch for
            a run that averages with SWA; see :class:`EarlyStopping`).
    """

    epochs = _part("record", "epochs")
    step_losses = _part("record", "step_losses")
    sampled_steps = _part("record", "sampled_steps")
    sampled_losses = _part("record", "sampled_losses")
    global_grad_norms = _part("record", "global_grad_norms")
    grad_norms = _part("record", "grad_norms")
    update_ratios = _part("record", "update_ratios")
    dead_fractions = _part("record", "dead_fractions")
    saturated_fractions = _part("record", "saturated_fractions")
    first_layer_filters = _part("record", "first_layer_filters")
    best_epoch = _part("stopping", "best_epoch")
    best_value = _part("stopping", "best_value")
    best_state = _part("stopping", "best_state")
    last_state = _part("stopping", "last_state")
    stopped_epoch = _part("stopping", "stopped_epoch")
    divergence = _part("guard", "divergence")

    def __init__(
        self,
        metric: str = "val_accuracy",
        *,
        every_n_steps: int = 25,
        patience: int | None = None,
        checkpoints: str = "best_and_last",
        thresholds: Thresholds | None = None,
        stop_on_divergence: bool = True,
        patience_from_epoch: int = 1,
    ) -> None:
        self.stopping = EarlyStopping(metric, patience, checkpoints, patience_from_epoch)
        self.record = Record()
        self.recorder = Recorder(self.record, every_n_steps)
        self.thresholds = thresholds or Thresholds()
        self.guard = DivergenceGuard(self.thresholds, stop_on_divergence)
        self.metric, self.every_n_steps, self.patience = metric, every_n_steps, patience
        self.checkpoints, self.stop_on_divergence = checkpoints, stop_on_divergence
        self._model: nn.Module | None = None

    # ---------------------------------------------------------------- hooks into the training loop

    def on_fit_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self._model = model
        self.recorder.attach(model)

    def on_step_begin(self, step: int) -> None:
        self.recorder.begin_step(step)

    def on_after_backward(self, step: int, loss: torch.Tensor) -> None:
        self.recorder.measure_gradients(step)

    def on_step_end(self, step: int, loss: torch.Tensor) -> None:
        sample = self.recorder.end_step(step, loss)
        if sample is None:
            return
        epoch = len(self.record.epochs) + 1
        self.recorder.add_loss(sample)
        if sample.grad_norm is not None:
            # Against the earlier samples: the gradient norm goes into the record after the check.
            self.guard.check_gradients(sample.grad_norm, self.record.global_grad_norms, epoch, step)
            self.recorder.add_gradients(sample)
        self.recorder.add_activations(sample)
        self.guard.check_loss(sample.loss, self.record.initial_loss, epoch, step)

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.recorder.end_epoch()
        self.record.epochs.append(stats)
        self.guard.check_epoch(stats, self.record.initial_loss)
        return self.stopping.update(stats, self._model)

    def on_fit_end(self) -> None:
        model, self._model = self._model, None
        self.recorder.detach()
        if model is not None:
            self.stopping.finish(model)

    def record_non_finite(self, error: NonFiniteLossError) -> Diagnosis:
        """Records a non-finite loss that the training loop caught between two sampled steps."""
        return self.guard.record_non_finite(error)

    # ---------------------------------------------------------------- the record, summarized

    @property
    def initial_loss(self) -> float:
        """The training loss of the first step, before any update: about ``ln(C)`` when all is well."""
        return self.record.initial_loss

    def layer_stats(self) -> list[LayerStats]:
        """Each parameterized layer's medians, then each activation layer's."""
        return self.record.layer_stats()

    def noise(self) -> float:
        """See :meth:`Record.noise`."""
        return self.record.noise()

    def diagnose(self) -> list[Diagnosis]:
        """Every diagnosis that the record supports, most severe first (a divergence leads)."""
        found = [self.divergence] if self.divergence else []
        return found + diagnose(self.record, self.thresholds)
