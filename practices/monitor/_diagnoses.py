"""The nine diagnoses of a finished (or stopped) run, each a pure function of its record.

Each takes a :class:`~practices.monitor.Record` and :class:`~practices.monitor.Thresholds` and
returns a :class:`~practices.monitor.Diagnosis` or None. :data:`DIAGNOSES` lists them by code, in
the order :func:`diagnose` reports them. Divergence is not among them: the guard finds it while
training runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from practices.monitor._diagnosis import Diagnosis, make_diagnosis
from practices.monitor._record import Record, median
from practices.monitor._thresholds import Thresholds

__all__ = ["DIAGNOSES", "diagnose"]

_TINY = 1e-12


def vanishing_gradients(record: Record, t: Thresholds) -> Diagnosis | None:
    """The first layer's gradients far below the last layer's, or all gradients collapsing early."""
    layers = [label for label in record.grad_norms if record.grad_norms[label]]
    if len(layers) >= 2:
        first, last = median(record.grad_norms[layers[0]]), median(record.grad_norms[layers[-1]])
        if last > 0 and first < t.vanishing_ratio * last:
            return make_diagnosis(
                "vanishing_gradients",
                f"the first layer's gradient norm ({first:.2e}) is {last / max(first, _TINY):.2g}x smaller than "
                f"the last layer's ({last:.2e}); limit {1 / t.vanishing_ratio:.0f}x",
                {"first_layer_grad_norm": first, "last_layer_grad_norm": last})
    norms = record.global_grad_norms
    if len(norms) >= 6 and record.epochs:
        early, late = median(norms[: len(norms) // 3]), median(norms[-(len(norms) // 3):])
        loss_now, initial = record.epochs[-1].train_loss, record.initial_loss
        if early > 0 and late < t.collapse_ratio * early and loss_now > 0.5 * initial:
            return make_diagnosis(
                "vanishing_gradients",
                f"the gradient norm collapsed from {early:.2e} to {late:.2e} while the training loss is still "
                f"{loss_now:.3g} (initial {initial:.3g})",
                {"early_grad_norm": early, "late_grad_norm": late, "train_loss": loss_now})
    return None


def lr_too_high(record: Record, t: Thresholds) -> Diagnosis | None:
    """The epoch training loss jumps up, or rises in too many epochs (oscillates)."""
    losses = [s.train_loss for s in record.epochs]
    if len(losses) < 2:
        return None
    jumps = [(i + 2, b / a) for i, (a, b) in enumerate(itertools.pairwise(losses)) if a > 0 and b > t.jump_factor * a]
    if jumps:
        epoch, factor = max(jumps, key=lambda j: j[1])
        return make_diagnosis(
            "lr_too_high",
            f"the training loss jumped {factor:.2f}x at epoch {epoch} ({len(jumps)} jump(s) above "
            f"{t.jump_factor:g}x over {len(losses)} epochs)",
            {"jump_factor": factor, "jumps": len(jumps)}, epoch)
    rises = sum(b > a for a, b in itertools.pairwise(losses))
    share = rises / (len(losses) - 1)
    if len(losses) >= 4 and share >= t.oscillation_fraction:
        return make_diagnosis(
            "lr_too_high",
            f"the training loss oscillates: it rose in {rises} of {len(losses) - 1} epochs "
            f"({share:.0%}, limit {t.oscillation_fraction:.0%})",
            {"rising_epochs": rises, "share": share})
    return None


def lr_too_low(record: Record, t: Thresholds) -> Diagnosis | None:
    """Tiny update ratios and a training loss that barely moved."""
    medians = [median(v) for v in record.update_ratios.values() if v]
    ratio = median(medians) if medians else math.nan
    if not record.epochs or not math.isfinite(ratio) or ratio >= t.lr_low_update_ratio:
        return None
    initial, last = record.initial_loss, record.epochs[-1].train_loss
    progress = (initial - last) / initial if initial > 0 else math.nan
    if not progress < t.slow_progress:
        return None
    return make_diagnosis(
        "lr_too_low",
        f"the median update ratio |dW|/|W| is {ratio:.1e}, far below 1e-3, and the training loss went only "
        f"from {initial:.3g} to {last:.3g} in {len(record.epochs)} epochs ({progress:.0%} of the way to zero)",
        {"update_ratio": ratio, "loss_progress": progress})


def noisy_loss(record: Record, t: Thresholds) -> Diagnosis | None:
    """Step losses that scatter widely around their trend within an epoch (see :meth:`Record.noise`)."""
    noise = record.noise()
    if not noise > t.noise:
        return None
    return make_diagnosis(
        "noisy_loss",
        f"the step-to-step training loss varies by {noise:.0%} of its mean within an epoch (limit {t.noise:.0%})",
        {"noise": noise})


def overfitting(record: Record, t: Thresholds) -> Diagnosis | None:
    """The validation loss rising for ``overfit_epochs`` epochs after its minimum while training loss falls."""
    epochs = record.epochs
    if len(epochs) < t.overfit_epochs + 1:
        return None
    best = int(np.argmin([s.val_loss for s in epochs]))
    after = epochs[best + 1 :]
    if len(after) < t.overfit_epochs:
        return None
    low, final = epochs[best], epochs[-1]
    rise = (final.val_loss - low.val_loss) / max(low.val_loss, _TINY)
    if rise < t.overfit_rise or final.train_loss >= low.train_loss:
        return None
    opened = low.epoch + 1
    return make_diagnosis(
        "overfitting",
        f"the validation loss rose {rise:.0%} (from {low.val_loss:.3g} to {final.val_loss:.3g}) over the "
        f"{len(after)} epochs after epoch {low.epoch} while the training loss fell from {low.train_loss:.3g} "
        f"to {final.train_loss:.3g}: the gap opened at epoch {opened}",
        {"val_loss_min": low.val_loss, "val_loss_final": final.val_loss, "train_loss_final": final.train_loss,
         "rise": rise}, opened)


def underfitting(record: Record, t: Thresholds) -> Diagnosis | None:
    """The best training loss still high, and the validation loss close to it."""
    initial = record.initial_loss
    if not record.epochs or not initial > 0:
        return None
    best = min(record.epochs, key=lambda s: s.train_loss)
    gap = abs(best.val_loss - best.train_loss) / max(best.train_loss, _TINY)
    high = best.train_loss > t.underfit_loss_fraction * initial
    if not (high and gap < t.underfit_gap):
        return None
    return make_diagnosis(
        "underfitting",
        f"the best training loss {best.train_loss:.3g} (epoch {best.epoch}) is still "
        f"{best.train_loss / initial:.0%} of the initial {initial:.3g}, and the validation "
        f"loss {best.val_loss:.3g} is within {gap:.0%} of it",
        {"train_loss": best.train_loss, "val_loss": best.val_loss, "initial_loss": initial},
        best.epoch)


def update_ratio(record: Record, t: Thresholds) -> Diagnosis | None:
    """Layers whose median update ratio lies outside ``[update_ratio_low, update_ratio_high]``."""
    medians = {label: median(v) for label, v in record.update_ratios.items() if v}
    outside = {k: r for k, r in medians.items()
               if math.isfinite(r) and not t.update_ratio_low <= r <= t.update_ratio_high}
    if not outside:
        return None
    listed = ", ".join(f"{k} {r:.1e}" for k, r in outside.items())
    return make_diagnosis(
        "update_ratio",
        f"{len(outside)} of {len(medians)} layers have a median update ratio |dW|/|W| outside "
        f"[{t.update_ratio_low:.0e}, {t.update_ratio_high:.0e}]: {listed}",
        {f"update_ratio[{k}]": r for k, r in outside.items()})


def dead_relu(record: Record, t: Thresholds) -> Diagnosis | None:
    """ReLU layers with more than ``dead_relu`` of their units dead in the last epoch."""
    return _fraction_check(record, "dead_relu", record.dead_fractions, t.dead_relu, "dead units")


def saturation(record: Record, t: Thresholds) -> Diagnosis | None:
    """tanh/sigmoid layers with more than ``saturation`` of their outputs at the rails in the last epoch."""
    return _fraction_check(record, "saturation", record.saturated_fractions, t.saturation, "saturated outputs")


def _fraction_check(
    record: Record, code: str, fractions: dict[str, list[float]], limit: float, what: str
) -> Diagnosis | None:
    # The last epoch's samples: how the net ends, not how it started.
    per_epoch = max(1, len(record.sampled_steps) // max(1, len(record.epochs)))
    latest = {label: median(v[-per_epoch:]) for label, v in fractions.items() if v}
    over = {k: f for k, f in latest.items() if f > limit}
    if not over:
        return None
    listed = ", ".join(f"{k} {f:.0%}" for k, f in over.items())
    numbers = {f"{code}[{k}]": f for k, f in over.items()}
    return make_diagnosis(code, f"{what} above {limit:.0%}: {listed}", numbers)


DIAGNOSES: dict[str, Callable[[Record, Thresholds], Diagnosis | None]] = {
    "vanishing_gradients": vanishing_gradients,
    "lr_too_high": lr_too_high,
    "lr_too_low": lr_too_low,
    "noisy_loss": noisy_loss,
    "overfitting": overfitting,
    "underfitting": underfitting,
    "update_ratio": update_ratio,
    "dead_relu": dead_relu,
    "saturation": saturation,
}


def diagnose(record: Record, thresholds: Thresholds | None = None) -> list[Diagnosis]:
    """Every diagnosis that ``record`` supports, in the order of :data:`DIAGNOSES`."""
    thresholds = thresholds or Thresholds()
    found = [check(record, thresholds) for check in DIAGNOSES.values()]
    return [d for d in found if d is not None]
