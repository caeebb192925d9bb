"""An experiment ready to run: composed once, validated, its search space compiled.

Validation happens here, before any storage is opened: a bad experiment raises ConfigError and
nothing is written anywhere. The storage is probed last (StorageError when it cannot be reached), so
that a run refused for its config never creates a database file.

This module imports no torch: the config's checks run first and answer bad input in well under a
second; the data (:mod:`._data`) and the build check (:mod:`._probes`), which need torch and
scikit-learn (about 2 s of imports), load once the config has passed them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps.config._compose import Composed, compose_experiment, compose_options
from sweeps.config._schema import check_study_name, set_direction, validate_structure
from sweeps.config._space import SearchSpace, compile_space, config_for
from sweeps.storage._url import check_storage, check_workers, mask, probe_storage

if TYPE_CHECKING:
    from sweeps.experiment._data import PreparedData

__all__ = ["Experiment", "compile_experiment", "prepare"]


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
        """Loads the data and cuts the split (:func:`sweeps.experiment._data.load_data`).

        Raises:
            ConfigError: the loader failed, the labels hold fewer than 2 classes or skip one, or
                ``split.*`` leaves a split without a sample of some class.
        """
        from sweeps.experiment._data import load_data  # torch and scikit-learn: imported once config is valid

        return load_data(self.cfg)


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
        from sweeps.experiment._probes import check_builds  # torch: imported once the config is valid

        check_builds(exp, data)
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
