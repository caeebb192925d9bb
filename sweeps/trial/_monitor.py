"""The ``monitor`` config node -> a :class:`practices.monitor.Monitor` for one trial (or None when off)."""

from __future__ import annotations

from omegaconf import DictConfig

from practices.monitor import Monitor
from sweeps.config._schema import monitor_config
from sweeps.experiment._build import judged_from_epoch

__all__ = ["make_monitor"]


def make_monitor(cfg: DictConfig, *, checkpoints: str | None = None) -> Monitor | None:
    """A fresh monitor for one training run of ``cfg``; None with ``monitor.enabled: false``.

    Args:
        cfg: a trial's resolved config.
        checkpoints: overrides ``monitor.checkpoints`` (a rerun that only needs early stopping
            passes ``"none"``).
    """
    settings = monitor_config(cfg)
    if not settings.enabled:
        return None
    return Monitor(
        cfg.sweep.metric,
        every_n_steps=settings.every_n_steps,
        patience=settings.patience,
        checkpoints=checkpoints or settings.checkpoints,
        thresholds=settings.thresholds,
        stop_on_divergence=settings.stop_on_divergence,
        patience_from_epoch=judged_from_epoch(cfg),  # an SWA run is not stopped before it averages
    )
