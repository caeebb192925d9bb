"""An experiment ready to run: composed once, validated, its search space compiled.

Validation happens here, before any storage is opened: a bad experiment raises ConfigError and
nothing is written anywhere.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from practices.data import TrainVal
from practices.vault import Duplicates, SealedTest
from sweeps._build import BuildError, build, load_data
from sweeps._compose import Composed, compose_experiment, compose_options
from sweeps._config import validate_structure
from sweeps._errors import ConfigError
from sweeps._space import SearchSpace, compile_space, config_for
from sweeps._storage import check_storage, check_workers
from sweeps._vault import seal_test

__all__ = ["Experiment", "Dataset", "check_builds", "compile_experiment", "prepare"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What the driver holds: the training and validation samples, and the sealed test split.

    Only :meth:`train_val` is ever handed to trial code. The test samples sit in ``sealed``, a
    :class:`~practices.vault.SealedTest` that only ``sweeps._vault`` can open (README, "The test vault").
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
        return TrainVal(tensor(self.X_train), tensor(self.y_train), tensor(self.X_val), tensor(self.y_val), self.n_classes)


@dataclasses.dataclass
class Experiment:
    """The composed (unresolved) base config, the nodes of searched group options, the space."""

    cfg: DictConfig
    choices: dict[str, str]
    options: dict[str, dict[str, DictConfig]]
    space: SearchSpace
    overrides: list[str] = dataclasses.field(default_factory=list)

    @property
    def space_groups(self) -> set[str]:
        return {g.group for g in self.space.groups}

    @property
    def study_name(self) -> str:
        return self.cfg.sweep.study_name or self.choices.get("experiment") or "sweeps"

    def config(self, params: Mapping[str, Any]) -> DictConfig:
        """The resolved config of a trial with Optuna ``params``."""
        choices, values = self.space.assignments(params)
        return config_for(self.cfg, self.options, choices, values)

    def chosen(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The option of each config group for a trial with ``params``."""
        choices, _ = self.space.assignments(params)
        return {**self.choices, **choices}

    def record(self) -> dict[str, Any]:
        """Plain-JSON form, stored on the study so that export can rebuild any trial's config."""
        return {
            "base": OmegaConf.to_container(self.cfg, resolve=False),
            "choices": self.choices,
            "options": {g: {o: OmegaConf.to_container(n, resolve=False) for o, n in opts.items()} for g, opts in self.options.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Experiment":
        cfg = OmegaConf.create(record["base"])
        options = {g: {o: OmegaConf.create(n) for o, n in opts.items()} for g, opts in record["options"].items()}
        search = OmegaConf.to_container(cfg.search, resolve=False)
        return cls(cfg, dict(record["choices"]), options, compile_space(search, cfg, options))

    def load(self) -> Dataset:
        """Loads the data and cuts the split; errors in the data config become ConfigError."""
        try:
            X, y, split = load_data(self.cfg)
        except ConfigError:
            raise
        except Exception as exc:  # a user's loader can fail in any way; name where
            target = OmegaConf.select(self.cfg, "data._target_")
            raise ConfigError(f"data ({target}): {type(exc).__name__}: {exc}") from None
        drop = bool(OmegaConf.select(self.cfg, "vault.drop_duplicates", default=False))
        sealed, duplicates, n_dropped = seal_test(X, y, split, drop_duplicates=drop)
        n_classes = int(y.max()) + 1
        return Dataset(X[split.train], y[split.train], X[split.val], y[split.val], n_classes, sealed, duplicates, n_dropped)


def _check_builds(exp: Experiment, data: Dataset) -> None:
    """Builds model, optimizer and schedule of the base config and of every searched option."""
    variants = [("", {})] + [(f" with {g}={o}", {g: o}) for g, nodes in exp.options.items() for o in nodes]
    in_shape, n_classes = data.in_shape, data.n_classes
    for label, choices in variants:
        try:
            cfg = config_for(exp.cfg, exp.options, choices, {})
        except OmegaConfBaseException as exc:
            raise ConfigError(f"cannot resolve the config{label}: {exc}") from None
        try:
            build(cfg, in_shape, n_classes, seed=0)
        except BuildError as exc:
            raise ConfigError(f"{exc}{label}") from None


def prepare(overrides: Sequence[str]) -> tuple[Experiment, Dataset]:
    """Composes, validates and compiles an experiment, and loads its data.

    Raises:
        ConfigError: anything wrong with the config, naming the key, the value and what is allowed.
    """
    composed = compose_experiment(overrides)
    validate_structure(composed.cfg)
    check_storage(composed.cfg.sweep.storage)
    check_workers(composed.cfg.sweep.storage, composed.cfg.sweep.n_workers)
    exp = compile_experiment(composed)
    data = exp.load()
    _check_builds(exp, data)
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


def check_builds(exp: Experiment, data: Dataset) -> None:
    """Builds every variant of ``exp`` once, turning config errors into ConfigError."""
    _check_builds(exp, data)
