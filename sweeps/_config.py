"""Schemas of the driver's own config nodes (sweep, trainer, split) and their validation."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from practices.train import METRICS
from sweeps._errors import ConfigError

__all__ = ["SAMPLERS", "PRUNERS", "TOP_LEVEL_KEYS", "PreflightConfig", "preflight_config", "validate_structure"]

SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
DIRECTIONS = ("maximize", "minimize")
DEVICES = ("auto", "cpu", "cuda")
TOP_LEVEL_KEYS = ("data", "model", "optimizer", "schedule", "trainer", "sweep", "split", "search", "provenance",
                  "preflight")


@dataclasses.dataclass
class SweepConfig:
    study_name: Optional[str] = None
    storage: str = "sqlite:///sweeps.db"
    metric: str = "val_accuracy"
    direction: str = "maximize"
    n_trials: int = 20
    timeout: Optional[float] = None
    seed: int = 0
    sampler: str = "tpe"
    pruner: str = "median"
    max_failure_rate: float = 0.5
    export_dir: str = "exports"
    artifact_dir: Optional[str] = None


@dataclasses.dataclass
class TrainerConfig:
    max_epochs: int = 20
    batch_size: int = 64
    device: str = "auto"
    num_threads: Optional[int] = None


@dataclasses.dataclass
class SplitConfig:
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0


@dataclasses.dataclass
class GradientCheckConfig:
    enabled: bool = True
    n_samples: int = 4
    n_entries: int = 10
    step: float = 1e-5
    threshold: float = 1e-4


@dataclasses.dataclass
class InitLossCheckConfig:
    enabled: bool = True
    n_inits: int = 3
    n_samples: int = 256
    tolerance: float = 0.1


@dataclasses.dataclass
class OverfitCheckConfig:
    enabled: bool = True
    n_samples: int = 10
    max_steps: int = 300
    lr: float = 0.01
    loss_threshold: float = 0.01


@dataclasses.dataclass
class PreflightConfig:
    seed: int = 0
    cache: bool = True
    ignore: list[str] = dataclasses.field(default_factory=lambda: ["model.dropout"])
    stop_on_unfixable: bool = True
    gradient: GradientCheckConfig = dataclasses.field(default_factory=GradientCheckConfig)
    init_loss: InitLossCheckConfig = dataclasses.field(default_factory=InitLossCheckConfig)
    overfit: OverfitCheckConfig = dataclasses.field(default_factory=OverfitCheckConfig)


_SCHEMAS = {"sweep": SweepConfig, "trainer": TrainerConfig, "split": SplitConfig, "preflight": PreflightConfig}


def _typed(name: str, node: Any) -> Any:
    """``node`` merged onto its schema: unknown keys and wrong types raise ConfigError."""
    try:
        return OmegaConf.merge(OmegaConf.structured(_SCHEMAS[name]), node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or (f"{name}.{exc.key}" if getattr(exc, "key", None) else name)
        key = key if key.startswith(f"{name}.") or key == name else f"{name}.{key}"
        allowed = [f.name for f in dataclasses.fields(_SCHEMAS[name])]
        raise ConfigError(f"{key}: {exc.msg if hasattr(exc, 'msg') else exc} (keys of {name}: {allowed})") from None


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate_structure(cfg: DictConfig) -> None:
    """Checks the top-level keys and the sweep, trainer and split nodes.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    unknown = [k for k in cfg.keys() if k not in TOP_LEVEL_KEYS]
    _require(not unknown, f"unknown top-level config keys {unknown}; allowed: {list(TOP_LEVEL_KEYS)}")
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("search"))
    if missing:
        raise ConfigError(f"{missing[0]} has no value (???): set it, e.g. on the command line: {missing[0]}=VALUE")
    sweep = _typed("sweep", cfg.sweep)
    trainer = _typed("trainer", cfg.trainer)
    split = _typed("split", cfg.split)
    _validate_preflight(cfg)
    _require(sweep.n_trials >= 1, f"sweep.n_trials must be >= 1, got {sweep.n_trials}")
    _require(sweep.metric in METRICS, f"sweep.metric must be one of {sorted(METRICS)}, got {sweep.metric!r}")
    _require(sweep.direction in DIRECTIONS, f"sweep.direction must be one of {list(DIRECTIONS)}, got {sweep.direction!r}")
    _require(sweep.sampler in SAMPLERS, f"sweep.sampler must be one of {list(SAMPLERS)}, got {sweep.sampler!r}")
    _require(sweep.pruner in PRUNERS, f"sweep.pruner must be one of {list(PRUNERS)}, got {sweep.pruner!r}")
    _require(
        0.0 <= sweep.max_failure_rate <= 1.0,
        f"sweep.max_failure_rate must be in [0, 1], got {sweep.max_failure_rate}",
    )
    _require(sweep.timeout is None or sweep.timeout > 0, f"sweep.timeout must be > 0 seconds or null, got {sweep.timeout}")
    _require(trainer.max_epochs >= 1, f"trainer.max_epochs must be >= 1, got {trainer.max_epochs}")
    _require(trainer.batch_size >= 1, f"trainer.batch_size must be >= 1, got {trainer.batch_size}")
    _require(
        trainer.device.split(":")[0] in DEVICES,
        f"trainer.device must be one of {list(DEVICES)} (or cuda:N), got {trainer.device!r}",
    )
    _require(
        trainer.num_threads is None or trainer.num_threads >= 1,
        f"trainer.num_threads must be >= 1 or null, got {trainer.num_threads}",
    )
    for key in ("val_fraction", "test_fraction"):
        value = split[key]
        _require(0.0 < value < 1.0, f"split.{key} must be in (0, 1), got {value}")
    _require(
        split.val_fraction + split.test_fraction < 1.0,
        f"split.val_fraction + split.test_fraction must be < 1, got {split.val_fraction + split.test_fraction}",
    )


def preflight_config(cfg: DictConfig) -> DictConfig:
    """The typed ``preflight`` node of ``cfg``, with the defaults where it has none (older studies)."""
    return _typed("preflight", cfg.get("preflight") or {})


def _validate_preflight(cfg: DictConfig) -> None:
    pf = preflight_config(cfg)
    for check, keys in (("gradient", ("n_samples", "n_entries")), ("init_loss", ("n_inits", "n_samples")),
                        ("overfit", ("n_samples", "max_steps"))):
        for key in keys:
            _require(pf[check][key] >= 1, f"preflight.{check}.{key} must be >= 1, got {pf[check][key]}")
    for key, value in (("gradient.threshold", pf.gradient.threshold), ("init_loss.tolerance", pf.init_loss.tolerance),
                       ("overfit.lr", pf.overfit.lr), ("overfit.loss_threshold", pf.overfit.loss_threshold)):
        _require(value > 0, f"preflight.{key} must be > 0, got {value}")
    _require(0 < pf.gradient.step <= 1e-2, f"preflight.gradient.step must be in (0, 0.01], got {pf.gradient.step}")
    _require(pf.init_loss.tolerance < 1, f"preflight.init_loss.tolerance must be < 1, got {pf.init_loss.tolerance}")
    bad = [key for key in pf.ignore if not key.startswith("model.")]
    _require(not bad, f"preflight.ignore may list model.* keys only (what the checks build), got {bad}")
