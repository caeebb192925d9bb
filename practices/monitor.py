"""A training monitor: watches the loss curves, gradients, weights and activations while
:func:`practices.train.fit` runs, stops diverging runs, stops early, and keeps checkpoints.

Section 3 of PRACTICES.md as code. Per epoch it records the training and validation loss, the
validation metric and the learning rate. Every ``every_n_steps`` optimizer steps it samples the global
and per-layer gradient norms, the per-layer update ratio ``|dW| / |W|``, the fraction of dead ReLU
units and of saturated tanh/sigmoid units (forward hooks attached for that step only), and checks for
non-finite values. :meth:`Monitor.diagnose` turns the record into :class:`Diagnosis` objects, each
with the numbers behind it and the advice of PRACTICES.md; the caller decides what to do with them.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from practices.train import METRICS, Callback, EpochStats, NonFiniteLossError

__all__ = ["CHECKPOINT_POLICIES", "Diagnosis", "Diverged", "LayerStats", "Monitor", "Thresholds"]

CHECKPOINT_POLICIES = ("best_and_last", "best", "last", "none")
_TINY = 1e-12
_SATURATION_RAILS = {"tanh": (-0.99, 0.99), "sigmoid": (0.01, 0.99)}


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


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """A layer's medians over the sampled steps (NaN where not measured)."""

    layer: str
    grad_norm: float
    update_ratio: float
    dead_fraction: float
    saturated_fraction: float


class Diverged(Exception):
    """Training diverged (non-finite values, or the loss or gradient norm blew up)."""

    def __init__(self, diagnosis: Diagnosis, epoch: int, step: int) -> None:
        super().__init__(diagnosis.summary)
        self.diagnosis, self.epoch, self.step = diagnosis, epoch, step


_ADVICE = {
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


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


class Monitor(Callback):
    """Watches a run of :func:`practices.train.fit`; pass it in ``callbacks``.

    One monitor watches one run. Its forward hooks are attached only for the sampled steps and are
    all removed when the run ends, however it ends.

    Args:
        metric: the validation metric that picks the best epoch and drives early stopping, one of
            :data:`practices.train.METRICS`.
        every_n_steps: sample gradients, update ratios and activations every this many steps.
        patience: stop after this many epochs without improvement of ``metric``; None never stops.
        checkpoints: which state_dicts to keep, one of :data:`CHECKPOINT_POLICIES`.
        thresholds: when diagnoses fire; defaults to :class:`Thresholds`.
        stop_on_divergence: raise :class:`Diverged` as soon as training diverges.
    """

    def __init__(
        self,
        metric: str = "val_accuracy",
        *,
        every_n_steps: int = 25,
        patience: int | None = None,
        checkpoints: str = "best_and_last",
        thresholds: Thresholds | None = None,
        stop_on_divergence: bool = True,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        if checkpoints not in CHECKPOINT_POLICIES:
            raise ValueError(f"checkpoints must be one of {list(CHECKPOINT_POLICIES)}, got {checkpoints!r}")
        self.metric, self.every_n_steps, self.patience = metric, every_n_steps, patience
        self.checkpoints = checkpoints
        self.thresholds = thresholds or Thresholds()
        self.stop_on_divergence = stop_on_divergence
        self._sign = 1.0 if METRICS[metric] == "max" else -1.0
        # The record: what the report and the diagnoses are made of.
        self.epochs: list[EpochStats] = []
        self.step_losses: list[float] = []
        self.sampled_steps: list[int] = []
        self.sampled_losses: list[float] = []
        self.global_grad_norms: list[float] = []
        self.grad_norms: dict[str, list[float]] = {}
        self.update_ratios: dict[str, list[float]] = {}
        self.dead_fractions: dict[str, list[float]] = {}
        self.saturated_fractions: dict[str, list[float]] = {}
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_state: dict[str, torch.Tensor] | None = None
        self.first_layer_filters: torch.Tensor | None = None
        self.stopped_epoch: int | None = None
        self.divergence: Diagnosis | None = None
        self._reset_run_state()

    def _reset_run_state(self) -> None:
        self._model: nn.Module | None = None
        self._layers: list[tuple[str, list[torch.Tensor], list[torch.Tensor]]] = []
        self._param_layer: torch.Tensor | None = None
        self._weight_layer: torch.Tensor | None = None
        self._activations: list[tuple[str, nn.Module, str]] = []
        self._handles: list[Any] = []
        self._pending_epoch_losses: list[torch.Tensor] = []
        self._pending: dict[str, torch.Tensor] = {}
        self._weights_before: list[torch.Tensor] | None = None
        self._epochs_without_improvement = 0

    # ---------------------------------------------------------------- hooks into the training loop

    def on_fit_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self._model = model
        layer_of_param: list[int] = []
        layer_of_weight: list[int] = []
        for name, module in model.named_modules():
            params = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if params:
                label = f"{name or 'model'}:{type(module).__name__}"
                # The update ratio of a layer is that of its weights; biases are left out.
                weights = [p.detach() for p in params if p.dim() >= 2] or [p.detach() for p in params]
                self._layers.append((label, params, weights))
                layer_of_param += [len(self._layers) - 1] * len(params)
                layer_of_weight += [len(self._layers) - 1] * len(weights)
            kind = _activation_kind(module)
            if kind:
                self._activations.append((f"{name}:{type(module).__name__}", module, kind))
        device = next(model.parameters()).device if layer_of_param else torch.device("cpu")
        self._param_layer = torch.tensor(layer_of_param, device=device, dtype=torch.long)
        self._weight_layer = torch.tensor(layer_of_weight, device=device, dtype=torch.long)
        for label, _, _ in self._layers:
            self.grad_norms.setdefault(label, [])
            self.update_ratios.setdefault(label, [])
        for label, _, kind in self._activations:
            (self.dead_fractions if kind == "relu" else self.saturated_fractions).setdefault(label, [])

    def _sampled(self, step: int) -> bool:
        return step % self.every_n_steps == 0

    def on_step_begin(self, step: int) -> None:
        if not self._sampled(step):
            return
        for label, module, kind in self._activations:
            self._handles.append(module.register_forward_hook(self._activation_hook(label, kind)))

    def _activation_hook(self, label: str, kind: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            with torch.no_grad():
                self._pending[label] = _dead_fraction(output) if kind == "relu" else _saturated_fraction(output, kind)
        return hook

    def on_after_backward(self, step: int, loss: torch.Tensor) -> None:
        if not self._sampled(step) or not self._layers:
            return
        with torch.no_grad():
            params = [p for _, ps, _ in self._layers for p in ps]
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            squares = torch.stack(torch._foreach_norm(grads)).square()
            per_layer = torch.zeros(len(self._layers), device=squares.device, dtype=squares.dtype)
            per_layer.index_add_(0, self._param_layer, squares)
            self._pending["grad_norm"] = squares.sum().sqrt()
            self._pending["grad_norms"] = per_layer.sqrt()
            self._weights_before = [w.clone() for _, _, ws in self._layers for w in ws]

    def on_step_end(self, step: int, loss: torch.Tensor) -> None:
        self._pending_epoch_losses.append(loss.detach())
        if not self._sampled(step):
            return
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        with torch.no_grad():
            pending, self._pending = self._pending, {}
            values = [loss.detach().float().reshape(1)]
            if self._weights_before is not None:
                after = [w for _, _, ws in self._layers for w in ws]
                changes = torch.stack(torch._foreach_norm(torch._foreach_sub(after, self._weights_before)))
                sizes = torch.stack(torch._foreach_norm(self._weights_before))
                self._weights_before = None
                ratios = self._by_layer(changes) / self._by_layer(sizes).clamp_min(_TINY)
                values += [pending.pop("grad_norm").float().reshape(1), pending.pop("grad_norms").float(),
                           ratios.float()]
            has_gradients = len(values) > 1
            values += [v.float().reshape(1) for v in pending.values()]
            numbers = torch.cat(values).tolist()  # one device sync per sampled step
        self._record_sample(step, numbers, list(pending), has_gradients)

    def _by_layer(self, norms: torch.Tensor) -> torch.Tensor:
        """Norms of the weight tensors -> the norm of each layer's weights taken together."""
        per_layer = torch.zeros(len(self._layers), device=norms.device, dtype=norms.dtype)
        return per_layer.index_add_(0, self._weight_layer, norms.square()).sqrt()

    def _record_sample(
        self, step: int, numbers: list[float], activation_labels: list[str], has_gradients: bool
    ) -> None:
        epoch = len(self.epochs) + 1
        loss, numbers = numbers[0], numbers[1:]
        self.sampled_steps.append(step)
        self.sampled_losses.append(loss)
        if has_gradients:
            n = len(self._layers)
            grad_norm, layer_norms, ratios = numbers[0], numbers[1 : 1 + n], numbers[1 + n : 1 + 2 * n]
            numbers = numbers[1 + 2 * n :]
            self._check_gradients(grad_norm, epoch, step)
            self.global_grad_norms.append(grad_norm)
            for (label, _, _), norm, ratio in zip(self._layers, layer_norms, ratios):
                self.grad_norms[label].append(norm)
                self.update_ratios[label].append(ratio)
        for label, value in zip(activation_labels, numbers):
            (self.dead_fractions if label in self.dead_fractions else self.saturated_fractions)[label].append(value)
        self._check_loss(loss, epoch, step)

    def on_epoch_end(self, stats: EpochStats) -> bool:
        if self._pending_epoch_losses:
            self.step_losses += torch.stack(self._pending_epoch_losses).float().tolist()
            self._pending_epoch_losses.clear()
        self.epochs.append(stats)
        self._check_epoch(stats)
        value = stats.metric(self.metric)
        if self.best_value is None or self._sign * value > self._sign * self.best_value:
            self.best_epoch, self.best_value = stats.epoch, value
            self._epochs_without_improvement = 0
            if self.checkpoints in ("best_and_last", "best"):
                self.best_state = self._state()
        else:
            self._epochs_without_improvement += 1
        if self.patience is not None and self._epochs_without_improvement >= self.patience:
            self.stopped_epoch = stats.epoch
            return True
        return False

    def on_fit_end(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        model = self._model
        if model is not None:
            if self.checkpoints in ("best_and_last", "last"):
                self.last_state = self._state()
            conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
            if conv is not None:
                self.first_layer_filters = conv.weight.detach().to("cpu", copy=True)
        self._reset_run_state()

    def _state(self) -> dict[str, torch.Tensor]:
        assert self._model is not None
        return {k: v.detach().to("cpu", copy=True) for k, v in self._model.state_dict().items()}

    # ---------------------------------------------------------------- divergence: stop at once

    def _diverged(self, summary: str, numbers: dict[str, float], epoch: int, step: int) -> None:
        self.divergence = Diagnosis("diverged", "error", summary, _ADVICE["diverged"], numbers, epoch)
        if self.stop_on_divergence:
            raise Diverged(self.divergence, epoch, step)

    def record_non_finite(self, error: NonFiniteLossError) -> Diagnosis:
        """Records a non-finite loss that the training loop caught between two sampled steps."""
        if self.divergence is None:
            summary = f"non-finite training loss ({error.loss}) in epoch {error.epoch}, by step {error.step}"
            self.divergence = Diagnosis("diverged", "error", summary, _ADVICE["diverged"],
                                        {"loss": error.loss, "step": error.step}, error.epoch)
        return self.divergence

    def _check_loss(self, loss: float, epoch: int, step: int) -> None:
        if self.divergence is not None:
            return
        if not math.isfinite(loss):
            self._diverged(f"non-finite training loss ({loss}) at epoch {epoch}, step {step}",
                           {"loss": loss, "step": step}, epoch, step)
            return
        initial = self.sampled_losses[0]
        factor = self.thresholds.loss_blowup_factor
        if math.isfinite(initial) and loss > factor * max(initial, _TINY):
            self._diverged(f"training loss blew up to {loss:.4g} at epoch {epoch}, step {step}, "
                           f"{loss / initial:.3g}x the initial {initial:.4g} (limit {factor:g}x)",
                           {"loss": loss, "initial_loss": initial, "step": step}, epoch, step)

    def _check_gradients(self, grad_norm: float, epoch: int, step: int) -> None:
        if self.divergence is not None:
            return
        if not math.isfinite(grad_norm):
            self._diverged(f"non-finite gradient norm ({grad_norm}) at epoch {epoch}, step {step}",
                           {"grad_norm": grad_norm, "step": step}, epoch, step)
            return
        earlier = self.global_grad_norms
        factor = self.thresholds.grad_blowup_factor
        if len(earlier) >= 5:
            typical = _median(earlier)
            if grad_norm > factor * max(typical, _TINY):
                self._diverged(f"gradient norm blew up to {grad_norm:.4g} at epoch {epoch}, step {step}, "
                               f"{grad_norm / typical:.3g}x the median {typical:.4g} so far (limit {factor:g}x)",
                               {"grad_norm": grad_norm, "median_grad_norm": typical, "step": step}, epoch, step)

    def _check_epoch(self, stats: EpochStats) -> None:
        if self.divergence is not None:
            return
        for name in ("train_loss", "val_loss"):
            value = getattr(stats, name)
            if not math.isfinite(value):
                self._diverged(f"non-finite {name.replace('_', ' ')} ({value}) at epoch {stats.epoch}",
                               {name: value}, stats.epoch, -1)
                return
        if self.sampled_losses and math.isfinite(self.sampled_losses[0]):
            initial = self.sampled_losses[0]
            if stats.train_loss > self.thresholds.loss_blowup_factor * max(initial, _TINY):
                self._diverged(f"training loss blew up to {stats.train_loss:.4g} at epoch {stats.epoch}, "
                               f"{stats.train_loss / initial:.3g}x the initial {initial:.4g}",
                               {"train_loss": stats.train_loss, "initial_loss": initial}, stats.epoch, -1)

    # ---------------------------------------------------------------- the record, summarized

    @property
    def initial_loss(self) -> float:
        """The training loss of the first step, before any update: about ``ln(C)`` when all is well."""
        return self.sampled_losses[0] if self.sampled_losses else math.nan

    def layer_stats(self) -> list[LayerStats]:
        """Each parameterized layer's medians, then each activation layer's."""
        nan = math.nan
        rows = [LayerStats(label, _median(norms), _median(self.update_ratios[label]), nan, nan)
                for label, norms in self.grad_norms.items()]
        rows += [LayerStats(label, nan, nan, _median(v), nan) for label, v in self.dead_fractions.items()]
        rows += [LayerStats(label, nan, nan, nan, _median(v)) for label, v in self.saturated_fractions.items()]
        return rows

    def diagnose(self) -> list[Diagnosis]:
        """Every diagnosis that the record supports, most severe first."""
        found = [self.divergence] if self.divergence else []
        for check in (self._vanishing, self._lr_too_high, self._lr_too_low, self._noisy, self._overfitting,
                      self._underfitting, self._update_ratios, self._dead_relus, self._saturation):
            diagnosis = check()
            if diagnosis is not None:
                found.append(diagnosis)
        return found

    def _diagnosis(self, code: str, summary: str, numbers: dict[str, float], epoch: int | None = None,
                   severity: str = "warning") -> Diagnosis:
        return Diagnosis(code, severity, summary, _ADVICE[code], numbers, epoch)

    def _vanishing(self) -> Diagnosis | None:
        t = self.thresholds
        layers = [label for label in self.grad_norms if self.grad_norms[label]]
        if len(layers) >= 2:
            first, last = _median(self.grad_norms[layers[0]]), _median(self.grad_norms[layers[-1]])
            if last > 0 and first < t.vanishing_ratio * last:
                return self._diagnosis(
                    "vanishing_gradients",
                    f"the first layer's gradient norm ({first:.2e}) is {last / max(first, _TINY):.2g}x smaller than "
                    f"the last layer's ({last:.2e}); limit {1 / t.vanishing_ratio:.0f}x",
                    {"first_layer_grad_norm": first, "last_layer_grad_norm": last})
        norms = self.global_grad_norms
        if len(norms) >= 6 and self.epochs:
            early, late = _median(norms[: len(norms) // 3]), _median(norms[-(len(norms) // 3):])
            loss_now = self.epochs[-1].train_loss
            if early > 0 and late < t.collapse_ratio * early and loss_now > 0.5 * self.initial_loss:
                return self._diagnosis(
                    "vanishing_gradients",
                    f"the gradient norm collapsed from {early:.2e} to {late:.2e} while the training loss is still "
                    f"{loss_now:.3g} (initial {self.initial_loss:.3g})",
                    {"early_grad_norm": early, "late_grad_norm": late, "train_loss": loss_now})
        return None

    def _lr_too_high(self) -> Diagnosis | None:
        t = self.thresholds
        losses = [s.train_loss for s in self.epochs]
        if len(losses) < 2:
            return None
        jumps = [(i + 2, b / a) for i, (a, b) in enumerate(zip(losses, losses[1:])) if a > 0 and b > t.jump_factor * a]
        if jumps:
            epoch, factor = max(jumps, key=lambda j: j[1])
            return self._diagnosis(
                "lr_too_high",
                f"the training loss jumped {factor:.2f}x at epoch {epoch} ({len(jumps)} jump(s) above "
                f"{t.jump_factor:g}x over {len(losses)} epochs)",
                {"jump_factor": factor, "jumps": len(jumps)}, epoch)
        rises = sum(b > a for a, b in zip(losses, losses[1:]))
        share = rises / (len(losses) - 1)
        if len(losses) >= 4 and share >= t.oscillation_fraction:
            return self._diagnosis(
                "lr_too_high",
                f"the training loss oscillates: it rose in {rises} of {len(losses) - 1} epochs "
                f"({share:.0%}, limit {t.oscillation_fraction:.0%})",
                {"rising_epochs": rises, "share": share})
        return None

    def _lr_too_low(self) -> Diagnosis | None:
        t = self.thresholds
        medians = [_median(v) for v in self.update_ratios.values() if v]
        ratio = _median(medians) if medians else math.nan
        if not self.epochs or not math.isfinite(ratio) or ratio >= t.lr_low_update_ratio:
            return None
        initial, last = self.initial_loss, self.epochs[-1].train_loss
        progress = (initial - last) / initial if initial > 0 else math.nan
        if not progress < t.slow_progress:
            return None
        return self._diagnosis(
            "lr_too_low",
            f"the median update ratio |dW|/|W| is {ratio:.1e}, far below 1e-3, and the training loss went only "
            f"from {initial:.3g} to {last:.3g} in {len(self.epochs)} epochs ({progress:.0%} of the way to zero)",
            {"update_ratio": ratio, "loss_progress": progress})

    def _epoch_step_losses(self) -> list[np.ndarray]:
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
        for losses in self._epoch_step_losses():
            if len(losses) < 4 or not np.all(np.isfinite(losses)) or losses.mean() <= max(floor, 0.0):
                continue
            x = np.arange(len(losses))
            trend = np.polyval(np.polyfit(x, losses, 1), x)
            spreads.append(float(np.std(losses - trend) / losses.mean()))
        return statistics.median(spreads) if spreads else math.nan

    def _noisy(self) -> Diagnosis | None:
        noise = self.noise()
        if not noise > self.thresholds.noise:
            return None
        return self._diagnosis(
            "noisy_loss",
            f"the step-to-step training loss varies by {noise:.0%} of its mean within an epoch "
            f"(limit {self.thresholds.noise:.0%})",
            {"noise": noise})

    def _overfitting(self) -> Diagnosis | None:
        t = self.thresholds
        if len(self.epochs) < t.overfit_epochs + 1:
            return None
        val = [s.val_loss for s in self.epochs]
        best = int(np.argmin(val))
        after = self.epochs[best + 1 :]
        if len(after) < t.overfit_epochs:
            return None
        low, final = self.epochs[best], self.epochs[-1]
        rise = (final.val_loss - low.val_loss) / max(low.val_loss, _TINY)
        if rise < t.overfit_rise or final.train_loss >= low.train_loss:
            return None
        opened = low.epoch + 1
        return self._diagnosis(
            "overfitting",
            f"the validation loss rose {rise:.0%} (from {low.val_loss:.3g} to {final.val_loss:.3g}) over the "
            f"{len(after)} epochs after epoch {low.epoch} while the training loss fell from {low.train_loss:.3g} "
            f"to {final.train_loss:.3g}: the gap opened at epoch {opened}",
            {"val_loss_min": low.val_loss, "val_loss_final": final.val_loss, "train_loss_final": final.train_loss,
             "rise": rise}, opened)

    def _underfitting(self) -> Diagnosis | None:
        t = self.thresholds
        if not self.epochs or not self.initial_loss > 0:
            return None
        best = min(self.epochs, key=lambda s: s.train_loss)
        gap = abs(best.val_loss - best.train_loss) / max(best.train_loss, _TINY)
        high = best.train_loss > t.underfit_loss_fraction * self.initial_loss
        if not (high and gap < t.underfit_gap):
            return None
        return self._diagnosis(
            "underfitting",
            f"the best training loss {best.train_loss:.3g} (epoch {best.epoch}) is still "
            f"{best.train_loss / self.initial_loss:.0%} of the initial {self.initial_loss:.3g}, and the validation "
            f"loss {best.val_loss:.3g} is within {gap:.0%} of it",
            {"train_loss": best.train_loss, "val_loss": best.val_loss, "initial_loss": self.initial_loss},
            best.epoch)

    def _update_ratios(self) -> Diagnosis | None:
        t = self.thresholds
        medians = {label: _median(v) for label, v in self.update_ratios.items() if v}
        outside = {k: r for k, r in medians.items()
                   if math.isfinite(r) and not t.update_ratio_low <= r <= t.update_ratio_high}
        if not outside:
            return None
        listed = ", ".join(f"{k} {r:.1e}" for k, r in outside.items())
        return self._diagnosis(
            "update_ratio",
            f"{len(outside)} of {len(medians)} layers have a median update ratio |dW|/|W| outside "
            f"[{t.update_ratio_low:.0e}, {t.update_ratio_high:.0e}]: {listed}",
            {f"update_ratio[{k}]": r for k, r in outside.items()})

    def _dead_relus(self) -> Diagnosis | None:
        return self._fraction_check("dead_relu", self.dead_fractions, self.thresholds.dead_relu, "dead units")

    def _saturation(self) -> Diagnosis | None:
        return self._fraction_check("saturation", self.saturated_fractions, self.thresholds.saturation,
                                    "saturated outputs")

    def _fraction_check(
        self, code: str, fractions: dict[str, list[float]], limit: float, what: str
    ) -> Diagnosis | None:
        # The last epoch's samples: how the net ends, not how it started.
        per_epoch = max(1, len(self.sampled_steps) // max(1, len(self.epochs)))
        latest = {label: _median(v[-per_epoch:]) for label, v in fractions.items() if v}
        over = {k: f for k, f in latest.items() if f > limit}
        if not over:
            return None
        listed = ", ".join(f"{k} {f:.0%}" for k, f in over.items())
        numbers = {f"{code}[{k}]": f for k, f in over.items()}
        return self._diagnosis(code, f"{what} above {limit:.0%}: {listed}", numbers)


def _activation_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    return None


def _dead_fraction(output: torch.Tensor) -> torch.Tensor:
    """Share of units (features, or channels of a conv map) that are zero for the whole batch."""
    if output.dim() < 2:
        return (output <= 0).all().float()
    alive = (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)
    return 1.0 - alive.float().mean()


def _saturated_fraction(output: torch.Tensor, kind: str) -> torch.Tensor:
    low, high = _SATURATION_RAILS[kind]
    return ((output <= low) | (output >= high)).float().mean()
