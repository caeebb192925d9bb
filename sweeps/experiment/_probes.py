"""The build check of an experiment: every config its search can produce builds model, optimizer and
schedule, and the model's forward pass gives logits of the right shape, before a trial trains."""

from __future__ import annotations

import copy
import json
import warnings
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps._errors import ConfigError
from sweeps.config._schema import check_averaging_keys
from sweeps.config._space import Probe, config_for
from sweeps.experiment._build import BuildError, build, make_model, make_optimizer, make_schedule

if TYPE_CHECKING:
    from sweeps.experiment._data import PreparedData
    from sweeps.experiment._experiment import Experiment

__all__ = ["check_builds"]


def check_builds(exp: Experiment, data: PreparedData) -> int:
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
