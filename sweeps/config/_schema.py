"""Schemas of the driver's own config nodes (sweep, trainer, split, vault) and their validation."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import typing
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from practices.monitor._thresholds import Thresholds
from practices.options import CHECKPOINT_POLICIES, METRICS, check_averaging
from sweeps._errors import ConfigError
from sweeps._packaged import conf_dir
from sweeps.config._stage_spec import parse_stages

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SEARCHABLE",
    "MonitorConfig",
    "PreflightConfig",
    "SelectConfig",
    "check_averaging_keys",
    "check_study_name",
    "config_groups",
    "direction_of",
    "frozen_keys",
    "monitor_config",
    "preflight_config",
    "run_keys",
    "select_config",
    "set_direction",
    "top_level_keys",
    "validate_structure",
]

SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
DIRECTIONS = ("maximize", "minimize")
DEVICES = ("auto", "cpu", "cuda")
FINAL_MODELS = ("retrain", "checkpoint")
MAX_SEED = 2**32 - 2  # numpy and scikit-learn take seeds in [0, 2**32 - 1]; the split uses seed + 1 as well
# Study names become folder names under sweep.export_dir: no path separators, no leading dot.
STUDY_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


# The schemas give each key of the driver's nodes its type; the values, defaults included, come from
# the config tree only (conf/<group>/default.yaml, and config.yaml's split node): one source, which
# `_defaults` reads where a node or key is absent (configs exported by an older sweeps).
# RUN marks the keys that steer a run without changing what a trial computes: they may differ when a
# study resumes (sweeps/study/_study.py), the others are fingerprinted.
RUN = {"run": True}


def _key(run: bool = False) -> Any:
    return dataclasses.field(default=MISSING, metadata=RUN if run else {})


@dataclasses.dataclass
class SweepConfig:
    study_name: Optional[str] = _key(run=True)
    storage: str = _key(run=True)
    metric: str = _key()
    direction: Optional[str] = _key()
    n_trials: int = _key(run=True)
    timeout: Optional[float] = _key(run=True)
    seed: int = _key()
    sampler: str = _key(run=True)
    tpe_startup_trials: int = _key(run=True)
    pruner: str = _key(run=True)
    pruner_warmup_epochs: Optional[int] = _key(run=True)
    max_failure_rate: float = _key(run=True)
    export_dir: str = _key(run=True)
    artifact_dir: Optional[str] = _key(run=True)
    n_workers: int = _key(run=True)
    stage: Optional[str] = _key(run=True)
    trials_per_worker: Optional[int] = _key(run=True)
    heartbeat_interval: int = _key(run=True)
    grace_period: Optional[int] = _key(run=True)
    stale_retries: int = _key(run=True)


@dataclasses.dataclass
class TrainerConfig:
    max_epochs: int = _key()
    batch_size: int = _key()
    device: str = _key(run=True)
    num_threads: Optional[int] = _key(run=True)
    averaging: str = _key()
    ema_decay: float = _key()
    swa_start_epoch: Optional[int] = _key()


@dataclasses.dataclass
class SplitConfig:
    val_fraction: float = _key()
    test_fraction: float = _key()
    seed: int = _key()


@dataclasses.dataclass
class VaultConfig:
    # drop_duplicates changes the test split only, which the vault's own fingerprint guards.
    drop_duplicates: bool = _key(run=True)
    final_model: str = _key(run=True)
    auto_open: bool = _key(run=True)
    reopen: bool = _key(run=True)


@dataclasses.dataclass
class SelectConfig:
    # What happens after the trials: the linked study <study>.select records its own settings.
    enabled: bool = _key(run=True)
    top_k: int = _key(run=True)
    n_seeds: int = _key(run=True)


@dataclasses.dataclass
class MonitorConfig:
    # What the monitor samples, keeps and shows may change; its patience and divergence handling count.
    enabled: bool = _key()
    every_n_steps: int = _key(run=True)
    patience: Optional[int] = _key()
    stop_on_divergence: bool = _key()
    checkpoints: str = _key(run=True)
    plots: bool = _key(run=True)
    print_diagnoses: bool = _key(run=True)
    thresholds: Thresholds = _key()


@dataclasses.dataclass
class GradientCheckConfig:
    enabled: bool = _key()
    n_samples: int = _key()
    n_entries: int = _key()
    step: float = _key()
    threshold: float = _key()


@dataclasses.dataclass
class InitLossCheckConfig:
    enabled: bool = _key()
    n_inits: int = _key()
    n_samples: int = _key()
    tolerance: float = _key()


@dataclasses.dataclass
class OverfitCheckConfig:
    enabled: bool = _key()
    n_samples: int = _key()
    max_steps: int = _key()
    lr: float = _key()
    loss_threshold: float = _key()


@dataclasses.dataclass
class PreflightConfig:
    seed: int = _key()
    cache: bool = _key()
    ignore: list[str] = _key()
    stop_on_unfixable: bool = _key()
    gradient: GradientCheckConfig = _key()
    init_loss: InitLossCheckConfig = _key()
    overfit: OverfitCheckConfig = _key()


_SCHEMAS = {"sweep": SweepConfig, "trainer": TrainerConfig, "split": SplitConfig, "monitor": MonitorConfig,
            "vault": VaultConfig, "preflight": PreflightConfig, "select": SelectConfig}
# Thresholds that are shares of something, hence at most 1.
_FRACTIONS = ("slow_progress", "oscillation_fraction", "dead_relu", "saturation")


# What a search may vary: the nodes a trial builds and trains from. Every other top-level key is
# fixed for a study (sweeps/config/_space.py refuses to search it).
SEARCHABLE = ("model", "optimizer", "schedule", "trainer")
# Written into an exported configuration (sweeps/driver/_export.py), read back by sweeps.train.
EXPORTED_KEYS = ("provenance",)


@functools.lru_cache(maxsize=1)
def _primary() -> DictConfig:
    return OmegaConf.load(conf_dir() / "config.yaml")


@functools.lru_cache(maxsize=1)
def config_groups() -> tuple[str, ...]:
    """The config groups of the primary config's defaults list (``conf/config.yaml``), in order."""
    groups = []
    for entry in _primary().get("defaults", []):
        if OmegaConf.is_dict(entry):
            groups += [str(k) for k in entry.keys()]
    return tuple(groups)


@functools.lru_cache(maxsize=1)
def top_level_keys() -> tuple[str, ...]:
    """Every top-level key a config may have: the config groups, the primary config's own keys
    (``split``, ``search``, ``stages``, ...) and what an export adds."""
    own = [str(k) for k in _primary().keys() if k not in ("defaults", "hydra")]
    return (*config_groups(), *own, *EXPORTED_KEYS)


def frozen_keys() -> tuple[str, ...]:
    """The top-level keys that are fixed for a study: all but :data:`SEARCHABLE`."""
    return tuple(k for k in top_level_keys() if k not in SEARCHABLE)


@functools.lru_cache(maxsize=None)
def _defaults(name: str) -> DictConfig:
    """The defaults of node ``name`` from the config tree: its group's ``default.yaml``, or the
    primary config's node (``split``). Cached: callers only read it (``OmegaConf.merge`` copies)."""
    if name in config_groups():
        return OmegaConf.load(conf_dir() / name / "default.yaml")
    return _primary()[name]


def run_keys() -> tuple[str, ...]:
    """The dotted keys that may differ between runs of one study (marked ``RUN`` in the schemas)."""
    return tuple(f"{name}.{field.name}" for name, schema in _SCHEMAS.items()
                 for field in dataclasses.fields(schema) if field.metadata.get("run"))


def _typed(name: str, node: Any) -> Any:
    """``node`` merged onto its schema and the config tree's defaults: unknown keys and wrong types
    raise ConfigError."""
    try:
        if isinstance(node, DictConfig):  # resolved where it sits: interpolations may point anywhere in the root
            node = OmegaConf.to_container(node, resolve=True)
        return OmegaConf.merge(OmegaConf.structured(_SCHEMAS[name]), _defaults(name), node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or (f"{name}.{exc.key}" if getattr(exc, "key", None) else name)
        key = key if key.startswith(f"{name}.") or key == name else f"{name}.{key}"
        expected = _EXPECTED.get(type(getattr(exc, "child_node", None)).__name__)
        if isinstance(exc, ValidationError) and expected is not None:  # a known key, a value of the wrong type
            optional = _accepts_none(_SCHEMAS[name], key.split(".")[1:])
            raise ConfigError(f"{key} must be {expected}{' or null' * optional}, got {exc.value!r}") from None
        allowed = [f.name for f in dataclasses.fields(_SCHEMAS[name])]
        if isinstance(exc, ConfigKeyError):
            raise ConfigError(f"{key} is not a key of {name}; its keys: {allowed}") from None
        why = str(getattr(exc, "msg", exc)).splitlines()[0]  # OmegaConf adds lines naming the key and the schema
        raise ConfigError(f"{key}: {why} (keys of {name}: {allowed})") from None


def _accepts_none(schema: Any, path: list[str]) -> bool:
    """Whether the field at ``path`` under dataclass ``schema`` may be None (its hint is Optional)."""
    for part in path:
        hints = typing.get_type_hints(schema) if dataclasses.is_dataclass(schema) else {}
        if part not in hints:
            return False
        schema = hints[part]
    return type(None) in typing.get_args(schema)


# What a schema field of each OmegaConf node type takes, for the one-line error of a wrong value.
_EXPECTED = {"IntegerNode": "an integer", "FloatNode": "a number", "BooleanNode": "true or false",
             "StringNode": "a string"}


_TYPED_CACHE: dict[tuple[str, str], Any] = {}
_TYPED_CACHE_SIZE = 64


def _typed_cached(name: str, node: Any) -> Any:
    """:func:`_typed` for a node that is fixed for a study (``monitor``, ``preflight``): every trial
    asks for it, and the schema merge costs ~10 ms each time; the result is read-only."""
    try:
        plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        key = (name, json.dumps(plain, sort_keys=True, default=str))
    except (OmegaConfBaseException, TypeError, ValueError):  # unresolvable or odd: validate it the slow way
        return _typed(name, node)
    typed = _TYPED_CACHE.get(key)
    if typed is None:
        typed = _typed(name, node)  # raises ConfigError for a bad node: nothing cached
        OmegaConf.set_readonly(typed, True)
        if len(_TYPED_CACHE) >= _TYPED_CACHE_SIZE:
            _TYPED_CACHE.clear()
        _TYPED_CACHE[key] = typed
    return typed


def monitor_config(cfg: DictConfig) -> MonitorConfig:
    """The validated ``monitor`` node as a :class:`MonitorConfig`; defaults where the node is absent
    (configs exported before the monitor existed).

    Raises:
        ConfigError: an unknown key, a wrong type or a value out of range.
    """
    node = cfg.get("monitor") if "monitor" in cfg else None
    monitor = _typed_cached("monitor", node if node is not None else {})
    settings = _MONITOR_SETTINGS.get(id(monitor))
    if settings is not None and settings[0] is monitor:  # validated before: asked twice per trial
        return settings[1]
    _require(monitor.every_n_steps >= 1, f"monitor.every_n_steps must be >= 1, got {monitor.every_n_steps}")
    _require(monitor.patience is None or monitor.patience >= 1,
             f"monitor.patience must be >= 1 epochs or null (never stop early), got {monitor.patience}")
    _require(monitor.checkpoints in CHECKPOINT_POLICIES,
             f"monitor.checkpoints must be one of {list(CHECKPOINT_POLICIES)}, got {monitor.checkpoints!r}")
    thresholds = monitor.thresholds
    for field in dataclasses.fields(Thresholds):
        value = thresholds[field.name]
        _require(value > 0, f"monitor.thresholds.{field.name} must be > 0, got {value}")
        if field.name in _FRACTIONS:
            _require(value <= 1, f"monitor.thresholds.{field.name} must be in (0, 1], got {value}")
    _require(thresholds.update_ratio_low < thresholds.update_ratio_high,
             f"monitor.thresholds.update_ratio_low must be < update_ratio_high, got "
             f"{thresholds.update_ratio_low} and {thresholds.update_ratio_high}")
    settings = OmegaConf.to_object(monitor)
    if len(_MONITOR_SETTINGS) >= _TYPED_CACHE_SIZE:
        _MONITOR_SETTINGS.clear()
    _MONITOR_SETTINGS[id(monitor)] = (monitor, settings)  # the node is kept: its id stays its own
    return settings


# id of a cached typed monitor node -> (the node, its validated MonitorConfig). Read-only, like the node.
_MONITOR_SETTINGS: dict[int, tuple[Any, MonitorConfig]] = {}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_interpolations(cfg: DictConfig) -> None:
    """Every ``${...}`` resolves (values are resolved later, per trial, so that searched keys flow
    into the keys that interpolate them)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        message = str(getattr(exc, "msg", exc)).splitlines()[0]
        raise ConfigError(f"{key} cannot be resolved: {message}") from None


def validate_structure(cfg: DictConfig) -> None:
    """Checks the top-level keys and the sweep, trainer, split and vault nodes.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    _check_interpolations(cfg)
    allowed = top_level_keys()
    unknown = [k for k in cfg.keys() if k not in allowed]
    _require(not unknown, f"unknown top-level config keys {unknown}; allowed: {list(allowed)}")
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("search"))
    if missing:
        raise ConfigError(f"{missing[0]} has no value (???): set it, e.g. on the command line: {missing[0]}=VALUE")
    sweep = _typed("sweep", cfg.sweep)
    trainer = _typed("trainer", cfg.trainer)
    split = _typed("split", cfg.split)
    vault = _typed("vault", cfg.vault if "vault" in cfg else {})
    _require(vault.final_model in FINAL_MODELS,
             f"vault.final_model must be one of {list(FINAL_MODELS)}, got {vault.final_model!r}")
    _validate_preflight(cfg)
    select_config(cfg)
    _require(sweep.n_trials >= 1, f"sweep.n_trials must be >= 1, got {sweep.n_trials}")
    _require(sweep.metric in METRICS, f"sweep.metric must be one of {sorted(METRICS)}, got {sweep.metric!r}")
    direction_of(sweep)
    _check_seed("sweep.seed", sweep.seed)
    _check_seed("split.seed", split.seed)
    if sweep.study_name is not None:
        check_study_name(sweep.study_name)
    lr_range = cfg.get("lr_range_test", _primary().lr_range_test)
    _require(isinstance(lr_range, bool), f"lr_range_test must be true or false, got {lr_range!r}")
    _require(sweep.sampler in SAMPLERS, f"sweep.sampler must be one of {list(SAMPLERS)}, got {sweep.sampler!r}")
    _require(sweep.tpe_startup_trials >= 0, f"sweep.tpe_startup_trials must be >= 0, got {sweep.tpe_startup_trials}")
    _require(sweep.pruner in PRUNERS, f"sweep.pruner must be one of {list(PRUNERS)}, got {sweep.pruner!r}")
    warmup, max_epochs = sweep.pruner_warmup_epochs, trainer.max_epochs
    _require(warmup is None or 0 <= warmup < max_epochs,
             f"sweep.pruner_warmup_epochs must be >= 0 and < trainer.max_epochs ({max_epochs}) or null, got {warmup}")
    _require(
        0.0 <= sweep.max_failure_rate <= 1.0,
        f"sweep.max_failure_rate must be in [0, 1], got {sweep.max_failure_rate}",
    )
    _require(
        sweep.timeout is None or sweep.timeout > 0,
        f"sweep.timeout must be > 0 seconds or null, got {sweep.timeout}",
    )
    if cfg.get("stages") is not None:
        parse_stages(OmegaConf.to_container(cfg.stages, resolve=True))
    elif sweep.stage is not None:
        raise ConfigError(f"sweep.stage={sweep.stage!r} but the experiment declares no stages")
    _require(sweep.n_workers >= 1, f"sweep.n_workers must be >= 1, got {sweep.n_workers}")
    _require(
        sweep.trials_per_worker is None or sweep.trials_per_worker >= 1,
        f"sweep.trials_per_worker must be >= 1 or null, got {sweep.trials_per_worker}",
    )
    _require(
        sweep.heartbeat_interval >= 1,
        f"sweep.heartbeat_interval must be >= 1 second, got {sweep.heartbeat_interval}",
    )
    _require(
        sweep.grace_period is None or sweep.grace_period > sweep.heartbeat_interval,
        f"sweep.grace_period must exceed sweep.heartbeat_interval ({sweep.heartbeat_interval}), "
        f"got {sweep.grace_period}",
    )
    _require(sweep.stale_retries >= 0, f"sweep.stale_retries must be >= 0, got {sweep.stale_retries}")
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
    check_averaging_keys(trainer)
    monitor_config(cfg)
    for key in ("val_fraction", "test_fraction"):
        value = split[key]
        _require(0.0 < value < 1.0, f"split.{key} must be in (0, 1), got {value}")
    _require(
        split.val_fraction + split.test_fraction < 1.0,
        f"split.val_fraction + split.test_fraction must be < 1, got {split.val_fraction + split.test_fraction}",
    )


def check_averaging_keys(trainer: Any) -> None:
    """Checks ``trainer.averaging``, ``ema_decay`` and ``swa_start_epoch`` (absent: the defaults).

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    try:
        default = _defaults("trainer")
        check_averaging(*(trainer.get(key, default[key]) for key in ("averaging", "ema_decay", "swa_start_epoch")),
                        trainer.get("max_epochs", None))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def direction_of(sweep: Any) -> str:
    """The direction of ``sweep`` (a sweep node): as set, or, where null, the one its metric is
    optimized in (``val_accuracy`` maximize, ``val_loss`` minimize).

    Raises:
        ConfigError: an unknown direction, or one that contradicts the metric.
    """
    wanted = {"max": "maximize", "min": "minimize"}[METRICS[sweep.metric]]
    if sweep.direction is None:
        return wanted
    _require(sweep.direction in DIRECTIONS,
             f"sweep.direction must be one of {list(DIRECTIONS)} or null (follows sweep.metric), "
             f"got {sweep.direction!r}")
    _require(sweep.direction == wanted,
             f"sweep.direction={sweep.direction} contradicts sweep.metric={sweep.metric}, which is best when it is "
             f"{'high' if wanted == 'maximize' else 'low'}: use sweep.direction={wanted}, or null (follows the metric)")
    return wanted


def set_direction(cfg: DictConfig) -> None:
    """Writes the derived direction into ``cfg.sweep.direction`` (read by the study, the plateau
    schedule's mode and the stage comparison). Call after :func:`validate_structure`."""
    struct = OmegaConf.is_struct(cfg)
    OmegaConf.set_struct(cfg, False)
    cfg.sweep.direction = direction_of(cfg.sweep)
    OmegaConf.set_struct(cfg, struct)


def check_study_name(name: Any, key: str = "sweep.study_name") -> None:
    """Refuses a study name that is no safe folder name (it becomes ``<export_dir>/<name>/``)."""
    _require(isinstance(name, str) and bool(STUDY_NAME.match(name)) and name not in (".", ".."),
             f"{key} must be 1-100 characters of A-Z a-z 0-9 . _ - without a leading dot (it names the export "
             f"folder), got {name!r}")


def _check_seed(key: str, seed: int) -> None:
    _require(0 <= seed <= MAX_SEED, f"{key} must be in [0, {MAX_SEED}], got {seed}")


def preflight_config(cfg: DictConfig) -> DictConfig:
    """The typed ``preflight`` node of ``cfg``, with the defaults where it has none (older studies)."""
    return _typed_cached("preflight", cfg.get("preflight") or {})


def select_config(cfg: DictConfig) -> SelectConfig:
    """The validated ``select`` node as a :class:`SelectConfig`; the defaults where the node is absent
    (configs exported before seed-robust selection existed).

    Raises:
        ConfigError: an unknown key, a wrong type or a value out of range.
    """
    node = cfg.get("select") if "select" in cfg else None
    select = _typed("select", node if node is not None else {})
    _require(select.top_k >= 1, f"select.top_k must be >= 1, got {select.top_k}")
    _require(select.n_seeds >= 1, f"select.n_seeds must be >= 1 (select=off for no selection), got {select.n_seeds}")
    return OmegaConf.to_object(select)


def _validate_preflight(cfg: DictConfig) -> None:
    pf = preflight_config(cfg)
    _check_seed("preflight.seed", pf.seed)
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
