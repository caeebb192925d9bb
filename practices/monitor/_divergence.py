"""The divergence guard: stops a run at once when its loss or gradients become non-finite or blow up."""

from __future__ import annotations

import math

from practices.monitor._diagnosis import Diagnosis, make_diagnosis
from practices.monitor._record import median
from practices.monitor._thresholds import Thresholds
from practices.train import EpochStats, NonFiniteLossError

__all__ = ["Diverged", "DivergenceGuard"]

_TINY = 1e-12


class Diverged(Exception):
    """Training diverged (non-finite values, or the loss or gradient norm blew up)."""

    def __init__(self, diagnosis: Diagnosis, epoch: int, step: int) -> None:
        super().__init__(diagnosis.summary)
        self.diagnosis, self.epoch, self.step = diagnosis, epoch, step


class DivergenceGuard:
    """Checks each sampled step and each epoch; the first divergence is kept in :attr:`divergence`.

    Args:
        thresholds: ``loss_blowup_factor`` and ``grad_blowup_factor`` say what counts as a blow-up.
        stop_on_divergence: raise :class:`Diverged` at the first divergence (else only keep it).
    """

    def __init__(self, thresholds: Thresholds, stop_on_divergence: bool = True) -> None:
        self.thresholds, self.stop_on_divergence = thresholds, stop_on_divergence
        self.divergence: Diagnosis | None = None

    def _diverged(self, summary: str, numbers: dict[str, float], epoch: int, step: int) -> None:
        self.divergence = make_diagnosis("diverged", summary, numbers, epoch, severity="error")
        if self.stop_on_divergence:
            raise Diverged(self.divergence, epoch, step)

    def record_non_finite(self, error: NonFiniteLossError) -> Diagnosis:
        """Records a non-finite loss that the training loop caught between two sampled steps."""
        if self.divergence is None:
            summary = f"non-finite training loss ({error.loss}) in epoch {error.epoch}, by step {error.step}"
            self.divergence = make_diagnosis("diverged", summary, {"loss": error.loss, "step": error.step},
                                             error.epoch, severity="error")
        return self.divergence

    def check_loss(self, loss: float, initial_loss: float, epoch: int, step: int) -> None:
        """A sampled step's training loss against the run's initial loss."""
        if self.divergence is not None:
            return
        if not math.isfinite(loss):
            self._diverged(f"non-finite training loss ({loss}) at epoch {epoch}, step {step}",
                           {"loss": loss, "step": step}, epoch, step)
            return
        factor = self.thresholds.loss_blowup_factor
        if math.isfinite(initial_loss) and loss > factor * max(initial_loss, _TINY):
            self._diverged(f"training loss blew up to {loss:.4g} at epoch {epoch}, step {step}, "
                           f"{loss / initial_loss:.3g}x the initial {initial_loss:.4g} (limit {factor:g}x)",
                           {"loss": loss, "initial_loss": initial_loss, "step": step}, epoch, step)

    def check_gradients(self, grad_norm: float, earlier: list[float], epoch: int, step: int) -> None:
        """A sampled step's global gradient norm against the median of the ``earlier`` samples."""
        if self.divergence is not None:
            return
        if not math.isfinite(grad_norm):
            self._diverged(f"non-finite gradient norm ({grad_norm}) at epoch {epoch}, step {step}",
                           {"grad_norm": grad_norm, "step": step}, epoch, step)
            return
        factor = self.thresholds.grad_blowup_factor
        if len(earlier) >= 5:
            typical = median(earlier)
            if grad_norm > factor * max(typical, _TINY):
                self._diverged(f"gradient norm blew up to {grad_norm:.4g} at epoch {epoch}, step {step}, "
                               f"{grad_norm / typical:.3g}x the median {typical:.4g} so far (limit {factor:g}x)",
                               {"grad_norm": grad_norm, "median_grad_norm": typical, "step": step}, epoch, step)

    def check_epoch(self, stats: EpochStats, initial_loss: float) -> None:
        """An epoch's training and validation loss."""
        if self.divergence is not None:
            return
        for name in ("train_loss", "val_loss"):
            value = getattr(stats, name)
            if not math.isfinite(value):
                self._diverged(f"non-finite {name.replace('_', ' ')} ({value}) at epoch {stats.epoch}",
                               {name: value}, stats.epoch, -1)
                return
        factor = self.thresholds.loss_blowup_factor
        if math.isfinite(initial_loss) and stats.train_loss > factor * max(initial_loss, _TINY):
            self._diverged(f"training loss blew up to {stats.train_loss:.4g} at epoch {stats.epoch}, "
                           f"{stats.train_loss / initial_loss:.3g}x the initial {initial_loss:.4g}",
                           {"train_loss": stats.train_loss, "initial_loss": initial_loss}, stats.epoch, -1)
