"""Recording a run: every step's loss, and on sampled steps the gradients, update ratios and activations.

Every ``every_n_steps`` optimizer steps the recorder samples the global and per-layer gradient
norms, the per-layer update ratio ``|dW| / |W|``, the fraction of dead ReLU units and of saturated
tanh/sigmoid units (forward hooks attached for that step only). The numbers of a sampled step
leave the device in one transfer, as a :class:`Sample`, and go into a :class:`~practices.monitor.Record`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from practices.monitor._record import Record

__all__ = ["Recorder", "Sample"]

_TINY = 1e-12
_SATURATION_RAILS = {"tanh": (-0.99, 0.99), "sigmoid": (0.01, 0.99)}


@dataclasses.dataclass(frozen=True)
class Sample:
    """The measurements of one sampled step.

    Attributes:
        step: the optimizer step, counted from 0 across epochs.
        loss: its training loss.
        grad_norm: the gradient norm over all parameters; None when gradients were not measured.
        grad_norms: per layer, its gradient norm.
        update_ratios: per layer, ``|dW| / |W|`` of its weights.
        activations: per activation layer, its dead (ReLU) or saturated (tanh/sigmoid) fraction.
    """

    step: int
    loss: float
    grad_norm: float | None
    grad_norms: dict[str, float]
    update_ratios: dict[str, float]
    activations: dict[str, float]


class Recorder:
    """Measures one run of a model into ``record``.

    Args:
        record: where the measurements go.
        every_n_steps: sample gradients, update ratios and activations every this many steps.
    """

    def __init__(self, record: Record, every_n_steps: int) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.record, self.every_n_steps = record, every_n_steps
        self._reset()

    def _reset(self) -> None:
        self._model: nn.Module | None = None
        self._layers: list[tuple[str, list[torch.Tensor], list[torch.Tensor]]] = []
        self._param_layer: torch.Tensor | None = None
        self._weight_layer: torch.Tensor | None = None
        self._activations: list[tuple[str, nn.Module, str]] = []
        self._handles: list[Any] = []
        self._pending_epoch_losses: list[torch.Tensor] = []
        self._pending: dict[str, torch.Tensor] = {}
        self._weights_before: list[torch.Tensor] | None = None

    def sampled(self, step: int) -> bool:
        return step % self.every_n_steps == 0

    def attach(self, model: nn.Module) -> None:
        """Finds the parameterized and the activation layers of ``model``."""
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
            self.record.grad_norms.setdefault(label, [])
            self.record.update_ratios.setdefault(label, [])
        for label, _, kind in self._activations:
            (self.record.dead_fractions if kind == "relu" else self.record.saturated_fractions).setdefault(label, [])

    def begin_step(self, step: int) -> None:
        """On a sampled step, attaches the forward hooks that measure the activations."""
        if not self.sampled(step):
            return
        for label, module, kind in self._activations:
            self._handles.append(module.register_forward_hook(self._activation_hook(label, kind)))

    def _activation_hook(self, label: str, kind: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            with torch.no_grad():
                self._pending[label] = _dead_fraction(output) if kind == "relu" else _saturated_fraction(output, kind)
        return hook

    def measure_gradients(self, step: int) -> None:
        """On a sampled step, takes the gradient norms and the weights before the update."""
        if not self.sampled(step) or not self._layers:
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

    def end_step(self, step: int, loss: torch.Tensor) -> Sample | None:
        """Keeps the step's loss; on a sampled step, removes the hooks and returns its measurements."""
        self._pending_epoch_losses.append(loss.detach())
        if not self.sampled(step):
            return None
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
        return self._sample(step, numbers, list(pending), has_gradients)

    def _by_layer(self, norms: torch.Tensor) -> torch.Tensor:
        """Norms of the weight tensors -> the norm of each layer's weights taken together."""
        per_layer = torch.zeros(len(self._layers), device=norms.device, dtype=norms.dtype)
        return per_layer.index_add_(0, self._weight_layer, norms.square()).sqrt()

    def _sample(self, step: int, numbers: list[float], activation_labels: list[str], has_gradients: bool) -> Sample:
        loss, numbers = numbers[0], numbers[1:]
        grad_norm, grad_norms, ratios = None, {}, {}
        if has_gradients:
            n = len(self._layers)
            labels = [label for label, _, _ in self._layers]
            grad_norm = numbers[0]
            grad_norms = dict(zip(labels, numbers[1 : 1 + n]))
            ratios = dict(zip(labels, numbers[1 + n : 1 + 2 * n]))
            numbers = numbers[1 + 2 * n :]
        return Sample(step, loss, grad_norm, grad_norms, ratios, dict(zip(activation_labels, numbers)))

    def add_loss(self, sample: Sample) -> None:
        self.record.sampled_steps.append(sample.step)
        self.record.sampled_losses.append(sample.loss)

    def add_gradients(self, sample: Sample) -> None:
        if sample.grad_norm is None:
            return
        self.record.global_grad_norms.append(sample.grad_norm)
        for label, norm in sample.grad_norms.items():
            self.record.grad_norms[label].append(norm)
            self.record.update_ratios[label].append(sample.update_ratios[label])

    def add_activations(self, sample: Sample) -> None:
        record = self.record
        for label, value in sample.activations.items():
            (record.dead_fractions if label in record.dead_fractions
             else record.saturated_fractions)[label].append(value)

    def end_epoch(self) -> None:
        """Moves the epoch's step losses into the record (one device sync an epoch)."""
        if self._pending_epoch_losses:
            self.record.step_losses += torch.stack(self._pending_epoch_losses).float().tolist()
            self._pending_epoch_losses.clear()

    def detach(self) -> None:
        """Removes every hook, keeps the first conv layer's filters, and forgets the model."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._model is not None:
            conv = next((m for m in self._model.modules() if isinstance(m, nn.Conv2d)), None)
            if conv is not None:
                self.record.first_layer_filters = conv.weight.detach().to("cpu", copy=True)
        self._reset()


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
