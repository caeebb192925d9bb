"""From a resolved config to a trained model: shared by trials, validation and reruns."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from practices.averaging import WeightAverage, swa_start
from practices.data import Split, TrainVal, as_arrays, split_indices
from practices.train import Callback, FitResult, fit, resolve_device
from sweeps.experiment._threads import available_cores, choose_threads

__all__ = ["BuildError", "Built", "build", "derive_seed", "judged_from_epoch", "load_data", "make_average",
           "make_model", "make_optimizer", "make_schedule", "n_threads", "train", "trial_seed"]


def derive_seed(*entropy: int) -> int:
    """A seed in [0, 2**31) derived from ``entropy`` (numpy's ``SeedSequence``): every seed sweeps
    derives (trials, samplers, selection re-trainings) comes from here."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0] % 2**31)


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed, derived from the study's seed and the trial's number."""
    return derive_seed(study_seed, trial_number)


def make_model(cfg: DictConfig, in_shape: Sequence[int], n_classes: int) -> torch.nn.Module:
    """``cfg.model`` instantiated for inputs of ``in_shape`` and ``n_classes`` classes (errors unwrapped)."""
    return _instantiate(cfg.model, in_shape=tuple(in_shape), n_classes=n_classes)


def make_optimizer(cfg: DictConfig) -> Any:
    """``cfg.optimizer`` as a partial that takes the model's parameters."""
    return _instantiate(cfg.optimizer)


def make_schedule(cfg: DictConfig, optimizer: torch.optim.Optimizer) -> Any:
    """``cfg.schedule`` built on ``optimizer``."""
    return _instantiate(cfg.schedule)(optimizer)


# Keys of a node that a direct call handles as Hydra's instantiate does; any other ``_`` key goes to Hydra.
_DIRECT_KEYS = frozenset({"_target_", "_partial_", "_convert_"})


def _instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """Hydra's ``instantiate(node, **kwargs, _convert_="all")``, as a direct call where the node is flat
    (no nested ``_target_``, no other special key): Hydra's walk of the node costs 1.5-3.5 ms a group
    against 0.05-0.5 ms for building it (three groups a trial, and again in every preflight probe)."""
    keys = OmegaConf.to_container(node, resolve=True)
    target = _direct_target(keys)
    if target is None:  # Hydra builds it, and words the error when the target cannot be found
        return instantiate(node, **kwargs, _convert_="all")
    partial = keys.pop("_partial_", False)
    arguments = {key: value for key, value in keys.items() if key not in _DIRECT_KEYS}
    arguments.update(kwargs)
    return functools.partial(target, **arguments) if partial else target(**arguments)


def _direct_target(keys: dict[str, Any]) -> Callable[..., Any] | None:
    if set(k for k in keys if str(k).startswith("_")) - _DIRECT_KEYS or not isinstance(keys.get("_target_"), str):
        return None
    if not isinstance(keys.get("_partial_", False), bool) or any(_nests_target(v) for v in keys.values()):
        return None
    return _locate(keys["_target_"])


def _nests_target(value: Any) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(_nests_target(v) for v in value.values())
    return isinstance(value, list) and any(_nests_target(v) for v in value)


@functools.lru_cache(maxsize=256)
def _locate(path: str) -> Callable[..., Any] | None:
    try:
        target = get_object(path)
    except Exception:  # not importable: Hydra's own call raises, with its wording
        return None
    return target if callable(target) else None


def load_data(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, Split]:
    """Loads ``cfg.data`` and cuts the split fixed by ``cfg.split``."""
    X, y = as_arrays(*instantiate(cfg.data))
    split = split_indices(
        y, val_fraction=cfg.split.val_fraction, test_fraction=cfg.split.test_fraction, seed=cfg.split.seed
    )
    return X, y, split


class BuildError(ValueError):
    """A config group's ``_target_`` could not be built from its keys."""

    def __init__(self, group: str, cfg: DictConfig, exc: Exception) -> None:
        target = cfg[group].get("_target_") if group in cfg else None
        cause = exc.__cause__ or exc  # Hydra wraps the target's own error
        super().__init__(f"{group} ({target}): {type(cause).__name__}: {cause}")


def _make(group: str, cfg: DictConfig, make: Any) -> Any:
    try:
        return make()
    except Exception as exc:  # user code can fail in any way; name the group that did
        raise BuildError(group, cfg, exc) from exc


class Built:
    """A trial's model, optimizer and schedule, built from a resolved config."""

    def __init__(self, cfg: DictConfig, in_shape: Sequence[int], n_classes: int, seed: int) -> None:
        self.device = _make("trainer", cfg, lambda: resolve_device(cfg.trainer.device))
        torch.manual_seed(seed)
        model = _make("model", cfg, lambda: make_model(cfg, in_shape, n_classes))
        self.model = model.to(self.device)
        self.optimizer = _make("optimizer", cfg, lambda: make_optimizer(cfg)(self.model.parameters()))
        self.scheduler = _make("schedule", cfg, lambda: make_schedule(cfg, self.optimizer))


def build(cfg: DictConfig, in_shape: Sequence[int], n_classes: int, seed: int) -> Built:
    return Built(cfg, in_shape, n_classes, seed)


def _averaging(cfg: DictConfig) -> str:
    return OmegaConf.select(cfg, "trainer.averaging", default="none")  # absent in configs written before averaging


def _swa_start(cfg: DictConfig) -> int:
    return swa_start(OmegaConf.select(cfg, "trainer.swa_start_epoch", default=None), cfg.trainer.max_epochs)


def make_average(cfg: DictConfig, model: torch.nn.Module) -> WeightAverage | None:
    """The weight average that ``cfg.trainer.averaging`` asks for, or None (``none``, or a config
    written before averaging existed)."""
    averaging = _averaging(cfg)
    if averaging == "none":
        return None
    start, decay = _swa_start(cfg), OmegaConf.select(cfg, "trainer.ema_decay", default=0.999)
    return _make("trainer", cfg, lambda: WeightAverage(model, averaging, ema_decay=decay, swa_start_epoch=start))


def judged_from_epoch(cfg: DictConfig) -> int:
    """The first epoch whose validation says what the trial's averaging gives: SWA's start epoch
    (before it the validated weights are the plain ones), else 1. Neither the pruner nor early
    stopping judges a trial before it: either would judge an SWA trial by weights that SWA has not
    touched yet (85 of 97 such trials were pruned before their average started: docs/benchmarks.md)."""
    return _swa_start(cfg) if _averaging(cfg) == "swa" else 1


def n_threads(cfg: DictConfig, model: torch.nn.Module | None = None) -> int:
    """``trainer.num_threads``, or when null the default of :func:`sweeps.experiment._threads.choose_threads`
    for this process's cores, ``sweep.n_workers`` and the model's size."""
    if cfg.trainer.num_threads:
        return int(cfg.trainer.num_threads)
    n_parameters = None if model is None else sum(p.numel() for p in model.parameters())
    return choose_threads(available_cores(), OmegaConf.select(cfg, "sweep.n_workers", default=1) or 1, n_parameters)


def train(cfg: DictConfig, data: TrainVal, seed: int, callbacks: Sequence[Callback] = ()) -> tuple[FitResult, Built]:
    """Trains ``cfg`` once on ``data`` with ``seed``; the data moves to the device once."""
    built = build(cfg, data.in_shape, data.n_classes, seed)
    torch.set_num_threads(n_threads(cfg, built.model))
    result = fit(
        built.model,
        built.optimizer,
        built.scheduler,
        data.to(built.device),
        max_epochs=cfg.trainer.max_epochs,
        batch_size=cfg.trainer.batch_size,
        seed=seed,
        metric=cfg.sweep.metric,
        callbacks=callbacks,
        average=make_average(cfg, built.model),
    )
    return result, built

