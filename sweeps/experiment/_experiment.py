"""An experiment ready to run: composed once, validated, its search space compiled.

Validation happens here, before any storage is opened: a bad experiment raises ConfigError and
nothing is written anywhere. The storage is probed last (StorageError when it cannot be reached), so
that a run refused for its config never creates a database file.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from practices.data import Split, TrainVal, as_arrays, split_indices, standardize
from practices.sealed import Duplicates, SealedTest
from sweeps._errors import ConfigError
from sweeps.config._compose import Composed, compose_experiment, compose_options
from sweeps.config._schema import check_averaging_keys, check_study_name, set_direction, validate_structure
from sweeps.config._space import Probe, SearchSpace, compile_space, config_for
from sweeps.experiment._build import BuildError, build, make_model, make_optimizer, make_schedule
from sweeps.experiment._seal import seal_test
from sweeps.storage._url import check_storage, check_workers, mask, probe_storage

__all__ = ["Experiment", "PreparedData", "check_builds", "compile_experiment", "prepare"]


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """An experiment's data as the driver holds it: the training and validation samples, and the sealed
    test split (not a ``torch.utils.data.Dataset``; trials get :meth:`train_val`).

    Only :meth:`train_val` is ever handed to trial code. The test samples sit in ``sealed``, a
    :class:`~practices.sealed.SealedTest` that only the test vault (``sweeps/vault/``) opens (README, "The test vault").
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    sealed: SealedTest
    duplicates: Duplicates
    n_dropped: int = 0

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def train_val(self) -> TrainVal:
        """Tensors of the training and validation samples, the test samples left out."""
        tensor = lambda a: torch.from_numpy(a.copy())  # noqa: E731
        return TrainVal(tensor(self.X_train), tensor(self.y_train), tensor(self.X_val), tensor(self.y_val),
                        self.n_classes)


@dataclasses.dataclass
class Experiment:
    """The composed (unresolved) base config, the nodes of searched group options, the space."""

    cfg: DictConfig
    choices: dict[str, str]
    options: dict[str, dict[str, DictConfig]]
    space: SearchSpace
    overrides: list[str] = dataclasses.field(default_factory=list)
    # A stage of a staged experiment: the staged run opens the vault once, for the overall winner.
    stage_of: str | None = None

    @property
    def space_groups(self) -> set[str]:
        return {g.group for g in self.space.groups}

    @property
    def study_name(self) -> str:
        """``sweep.study_name``, else the experiment's name (``sweeps`` without one), followed by
        ``-<file name>`` where ``data.path`` names a file of another name: other data, another study."""
        if self.cfg.sweep.study_name:
            return self.cfg.sweep.study_name
        name = self.choices.get("experiment") or "sweeps"
        path = OmegaConf.select(self.cfg, "data.path", default=None, throw_on_missing=False)
        try:
            stem = Path(str(path)).stem if isinstance(path, str) and path != "???" else ""
        except OmegaConfBaseException:
            stem = ""
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")[:40]
        return f"{name}-{stem}" if stem and stem != name else name

    def config(self, params: Mapping[str, Any]) -> DictConfig:
        """The resolved config of a trial with Optuna ``params``."""
        choices, values = self.space.assignments(params)
        return config_for(self.cfg, self.options, choices, values)

    def chosen(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The option of each config group for a trial with ``params``."""
        choices, _ = self.space.assignments(params)
        return {**self.choices, **choices}

    def record(self) -> dict[str, Any]:
        """Plain-JSON form, stored on the study so that export can rebuild any trial's config; the
        storage's password is masked (the command line supplies the real URL on every run)."""
        base = OmegaConf.to_container(self.cfg, resolve=False)
        base["sweep"]["storage"] = mask(str(base["sweep"]["storage"]))
        return {
            "base": base,
            "choices": self.choices,
            "options": {g: {o: OmegaConf.to_container(n, resolve=False) for o, n in opts.items()}
                        for g, opts in self.options.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Experiment":
        cfg = OmegaConf.create(record["base"])
        options = {g: {o: OmegaConf.create(n) for o, n in opts.items()} for g, opts in record["options"].items()}
        search = OmegaConf.to_container(cfg.search, resolve=False)
        return cls(cfg, dict(record["choices"]), options, compile_space(search, cfg, options))

    def load(self) -> PreparedData:
        """Loads the data and cuts the split; errors in the data config become ConfigError.

        Raises:
            ConfigError: the loader failed, the labels hold fewer than 2 classes or skip one, or
                ``split.*`` leaves a split without a sample of some class.
        """
        X, y = _load_arrays(self.cfg)
        split = _split(y, self.cfg.split)
        if _standardizes(self.cfg):
            X = standardize(X, split.train)  # before sealing: the test split is evaluated as trials see data
        drop = bool(OmegaConf.select(self.cfg, "vault.drop_duplicates", default=False))
        sealed, duplicates, n_dropped = seal_test(X, y, split, drop_duplicates=drop)
        n_classes = int(y.max()) + 1
        return PreparedData(X[split.train], y[split.train], X[split.val], y[split.val], n_classes, sealed, duplicates,
                       n_dropped)


def _standardizes(cfg: DictConfig) -> bool:
    """``data.standardize`` (false where the data node has none).

    Raises:
        ConfigError: it is not a boolean.
    """
    value = cfg.data.get("standardize", False)
    if not isinstance(value, bool):
        raise ConfigError(f"data.standardize must be true or false, got {value!r}")
    return value


def _load_arrays(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    target = OmegaConf.select(cfg, "data._target_")
    _standardizes(cfg)
    node = copy.deepcopy(cfg.data)  # keeps its parent: interpolations still resolve
    with open_dict(node):
        node.pop("standardize", None)  # applied after the split, not a loader argument
    try:
        X, y = as_arrays(*instantiate(node))
    except ConfigError:
        raise
    except Exception as exc:  # a user's loader can fail in any way; name where
        cause = exc.__cause__ or exc  # Hydra wraps the target's own error
        raise ConfigError(f"data ({target}): {type(cause).__name__}: {cause}") from None
    n_classes = int(y.max()) + 1 if len(y) else 0
    counts = np.bincount(y, minlength=n_classes)
    if np.count_nonzero(counts) < 2:
        raise ConfigError(f"data ({target}): the labels hold {np.count_nonzero(counts)} class(es); a classifier needs "
                          "at least 2 classes, each with at least 3 samples (one per split)")
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ConfigError(f"data ({target}): class labels must be 0..{n_classes - 1} with every class present; no "
                          f"sample has label {missing[:10].tolist()}")
    if counts.min() < 3:
        raise ConfigError(f"data ({target}): class {int(counts.argmin())} has {int(counts.min())} sample(s); "
                          "each class needs at least 3, one for each of the train, validation and test splits")
    return X, y


def _at_least(value: float) -> float:
    """``value`` rounded up to two significant digits, for a bound to suggest."""
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / scale) * scale


def _split(y: np.ndarray, split_cfg: DictConfig) -> Split:
    """The stratified split, refused where some split would miss a class."""
    n, n_classes = len(y), int(y.max()) + 1
    val_fraction, test_fraction = split_cfg.val_fraction, split_cfg.test_fraction
    # scikit-learn's sizes for a float test_size: ceil for the held-out part.
    n_test = math.ceil(test_fraction * n)
    n_rest = n - n_test
    n_val = math.ceil(val_fraction / (1.0 - test_fraction) * n_rest)
    sizes = (("split.test_fraction", test_fraction, n_test, n_classes / n),
             ("split.val_fraction", val_fraction, n_val, n_classes * (1 - test_fraction) / max(n_rest, 1)))
    for key, value, size, low in sizes:
        if size < n_classes:
            raise ConfigError(f"{key}={value} gives {size} of {n} samples for {n_classes} classes; each split needs at "
                              f"least one sample per class: use {key} >= {_at_least(low):g}")
    if n_rest - n_val < n_classes:
        raise ConfigError(f"split.val_fraction + split.test_fraction = {val_fraction + test_fraction:g} leaves "
                          f"{n_rest - n_val} of {n} samples for training, fewer than the {n_classes} classes; "
                          "lower them")
    try:
        split = split_indices(y, val_fraction=val_fraction, test_fraction=test_fraction, seed=split_cfg.seed)
    except ValueError as exc:  # scikit-learn's own conditions on stratification
        raise ConfigError(f"split (val_fraction={val_fraction}, test_fraction={test_fraction}, seed={split_cfg.seed}) "
                          f"cannot be cut: {exc}") from None
    for name, key, index in (("validation", "split.val_fraction", split.val),
                             ("test", "split.test_fraction", split.test),
                             ("train", "split.val_fraction + split.test_fraction", split.train)):
        absent = sorted(set(range(n_classes)) - set(np.unique(y[index]).tolist()))
        if absent:
            hint = "lower" if name == "train" else "raise"
            raise ConfigError(f"{key}: the {name} split holds no sample of class {absent[:10]}; each split needs at "
                              f"least one sample per class: {hint} {key} (now {val_fraction}, {test_fraction})")
    return split


def _check_builds(exp: Experiment, data: PreparedData) -> int:
    """Builds model, optimizer and schedule at every probe of the search space (no training) and
    runs one forward pass of each distinct model on two training samples.

    Returns:
        The number of probes checked, the base config included.

    Raises:
        ConfigError: naming the searched key and value (or the base config) that cannot build.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # passes on two samples: more threads only spin (4x the CPU time on 2 cores)
    try:
        return _check_probes(exp, data)
    finally:
        torch.set_num_threads(threads)


def _check_probes(exp: Experiment, data: PreparedData) -> int:
    sample = torch.from_numpy(data.X_train[:2].copy())
    try:
        base = build(config_for(exp.cfg, exp.options, {}, {}), data.in_shape, data.n_classes, seed=0)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve the config: {exc}") from None
    except BuildError as exc:
        raise ConfigError(str(exc)) from None
    _check_forward(exp.cfg, base.model, sample.to(base.device), data.n_classes, "")
    work = _ProbeConfig(exp)
    built: dict[str, Any] = {}
    probes = exp.space.probes()
    for probe in probes:
        try:
            cfg = work.at(probe)
            _build_cached(cfg, data, sample, built, probe.label)
            check_averaging_keys(cfg.trainer)
        except (BuildError, ConfigError) as exc:
            raise ConfigError(f"{probe.label}: {exc}; every value the search can sample must build (narrow the "
                              "search or change the fixed config)") from None
    return 1 + len(probes)


class _ProbeConfig:
    """One working copy of the config, moved from probe to probe by changing only what differs:
    a deep copy per probe costs more than the builds."""

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.cfg = copy.deepcopy(exp.cfg)
        OmegaConf.set_struct(self.cfg, False)
        self.choices: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def _node(self, top: str, option: str | None) -> DictConfig:
        return self.exp.options[top][option] if option is not None else self.exp.cfg[top]

    def at(self, probe: Probe) -> DictConfig:
        for top in set(self.choices) | set(probe.choices):
            if self.choices.get(top) != probe.choices.get(top):
                self.cfg[top] = self._node(top, probe.choices.get(top))
                self.values = {k: v for k, v in self.values.items() if k.split(".")[0] != top}
                self.choices[top] = probe.choices.get(top)
        for key in [k for k in self.values if k not in probe.values]:
            top, rest = key.split(".", 1)
            raw: Any = OmegaConf.to_container(self._node(top, self.choices.get(top)), resolve=False)
            for part in rest.split("."):
                raw = raw[part]
            OmegaConf.update(self.cfg, key, raw, merge=False)  # an interpolation stays one
            del self.values[key]
        for key, value in probe.values.items():
            if key not in self.values or (type(self.values[key]), self.values[key]) != (type(value), value):
                OmegaConf.update(self.cfg, key, value, merge=False)
                self.values[key] = value
        return self.cfg


def _build_cached(cfg: DictConfig, data: PreparedData, sample: torch.Tensor, built: dict[str, Any], label: str) -> None:
    """Builds model, optimizer and schedule of ``cfg`` on the CPU, each only where its resolved node
    (and what it is built on) differs from one built before."""
    keys = {}
    for group in ("model", "optimizer", "schedule"):
        try:
            node = OmegaConf.to_container(cfg[group], resolve=True)
        except OmegaConfBaseException as exc:
            raise BuildError(group, cfg, exc) from None
        keys[group] = json.dumps([keys.get("optimizer" if group == "schedule" else "model"), node], sort_keys=True,
                                 default=str)
    model_key, optimizer_key, schedule_key = (f"{g}:{keys[g]}" for g in ("model", "optimizer", "schedule"))
    if model_key not in built:
        built[model_key] = _instantiate("model", cfg, lambda: make_model(cfg, data.in_shape, data.n_classes))
        _check_forward(cfg, built[model_key], sample, data.n_classes, label)
    model = built[model_key]
    if optimizer_key not in built:
        make = _instantiate("optimizer", cfg, lambda: make_optimizer(cfg))
        _instantiate("optimizer", cfg, lambda: make(model.parameters()))  # the partial must take the parameters
        built[optimizer_key] = make
    if schedule_key not in built:
        optimizer = built[optimizer_key](model.parameters())  # a fresh one: a schedule changes its optimizer's lr
        built[schedule_key] = _instantiate("schedule", cfg, lambda: make_schedule(cfg, optimizer))


def _instantiate(group: str, cfg: DictConfig, make: Any) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make()
    except Exception as exc:  # user code can fail in any way; name the group that did
        raise BuildError(group, cfg, exc) from None


def _check_forward(cfg: DictConfig, model: torch.nn.Module, sample: torch.Tensor, n_classes: int, label: str) -> None:
    """One forward pass on two training samples: it must run and give ``(2, n_classes)`` logits."""
    where = f"{label}: model" if label else "model"
    target = OmegaConf.select(cfg, "model._target_")
    try:
        with torch.no_grad():
            out = model(sample)
    except Exception as exc:  # user code can fail in any way
        raise ConfigError(f"{where} ({target}): the forward pass on {len(sample)} training samples of shape "
                          f"{tuple(sample.shape[1:])} raises {type(exc).__name__}: {exc}") from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (len(sample), n_classes):
        raise ConfigError(f"{where} ({target}): the output for {len(sample)} samples is {shape}; expected logits of "
                          f"shape (batch, n_classes) = ({len(sample)}, {n_classes})")


def prepare(
    overrides: Sequence[str], *, probe: bool = True, build_probes: bool = True, composed: Composed | None = None
) -> tuple[Experiment, PreparedData]:
    """Composes, validates and compiles an experiment, loads its data, checks (``build_probes``) that
    every config the search can produce builds, then (``probe``) that the storage can be opened.
    Writes nothing. A worker process passes False for both: its parent checked the same overrides.
    ``composed``: ``overrides`` composed already (the command line composes once to learn Hydra's mode).

    Raises:
        ConfigError: anything wrong with the config, naming the key, the value and what is allowed.
        StorageError: the storage is well-formed but cannot be reached or opened.
    """
    composed = composed or compose_experiment(overrides)
    cfg = composed.cfg
    validate_structure(cfg)
    set_direction(cfg)
    check_storage(cfg.sweep.storage)
    check_workers(cfg.sweep.storage, cfg.sweep.n_workers)
    exp = compile_experiment(composed)
    if cfg.sweep.study_name is None:
        check_study_name(exp.study_name, "sweep.study_name (null: the experiment's name)")
    data = exp.load()
    if build_probes:
        _check_builds(exp, data)
    if probe:
        probe_storage(cfg.sweep.storage)
    return exp, data


def compile_experiment(composed: Composed) -> Experiment:
    """The experiment of a composed config: its searched group options composed, its space compiled."""
    cfg = composed.cfg
    search = OmegaConf.to_container(cfg.search, resolve=False) or {}
    options = {
        group: compose_options(composed, group, list((spec.get("options") or {}).keys()))
        for group, spec in search.items()
        if isinstance(spec, Mapping) and spec.get("type") == "group" and isinstance(spec.get("options"), Mapping)
    }
    return Experiment(cfg, composed.choices, options, compile_space(search, cfg, options), list(composed.overrides))


def check_builds(exp: Experiment, data: PreparedData) -> int:
    """Builds ``exp`` at every probe of its search space, turning config errors into ConfigError;
    returns the number of configs built."""
    return _check_builds(exp, data)
