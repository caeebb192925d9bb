"""Hydra composition, done once per run (never per trial)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from typing import Any, Iterator, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobRuntime
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps._errors import ConfigError
from sweeps._packaged import conf_dir
from sweeps.config._schema import config_groups
from sweeps.storage._url import mask_text

__all__ = ["CONF_DIR", "Composed", "compose_experiment", "compose_hydra", "compose_options", "own_hydra"]

CONF_DIR = conf_dir()  # the packaged config tree (sweeps/conf/ in a wheel, conf/ in a checkout)
# ${sweeps_conf:data/wine.csv}: a file shipped in the config tree, wherever the package is installed.
OmegaConf.register_new_resolver("sweeps_conf", lambda relative: str(CONF_DIR / relative), replace=True)


@dataclasses.dataclass
class Composed:
    """The composed config (unresolved), the option Hydra chose for each config group, and Hydra's
    own node (mode, sweeper, launcher: what the command line asks of Hydra)."""

    cfg: DictConfig
    choices: dict[str, str]
    overrides: list[str]
    hydra: DictConfig | None = None

    @property
    def experiment(self) -> str | None:
        return self.choices.get("experiment")


@contextlib.contextmanager
def own_hydra() -> Iterator[None]:
    """Hydra's global state set to our config tree for one composition, then put back as it was: inside
    ``python -m sweeps`` (``@hydra.main``) the application's Hydra keeps running around it."""
    global_hydra = GlobalHydra.instance()
    running, job_name = global_hydra.hydra, JobRuntime.instance().get("name") if global_hydra.hydra else None
    global_hydra.clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            yield
    finally:
        GlobalHydra.instance().clear()
        if running is not None:
            GlobalHydra.instance().initialize(running)
            JobRuntime.instance().set("name", job_name)


def _compose(overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str], DictConfig]:
    try:
        with own_hydra():
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        # Hydra echoes the overrides, a storage URL with its password among them.
        raise ConfigError(mask_text(f"cannot compose the config from {list(overrides)}: {_why(exc)}")) from None
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra") and v is not None}
    hydra_node = cfg.hydra
    with _unlocked(cfg):
        del cfg["hydra"]
    return cfg, choices, hydra_node


class _unlocked:
    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: Any) -> None:
        OmegaConf.set_struct(self.cfg, True)


def compose_experiment(overrides: Sequence[str]) -> Composed:
    """Composes ``conf/config.yaml`` with command-line ``overrides`` (``+experiment=x`` etc.)."""
    cfg, choices, hydra_node = _compose(overrides)
    return Composed(cfg, choices, list(overrides), hydra_node)


def compose_hydra(overrides: Sequence[str]) -> DictConfig:
    """The ``hydra`` node composed with ``overrides`` (mode, sweeper, launcher, output folders), unresolved.

    Raises:
        ConfigError: the overrides do not compose.
    """
    try:
        with own_hydra():
            return compose("config", overrides=list(overrides), return_hydra_config=True).hydra
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(mask_text(f"cannot compose the config from {list(overrides)}: {_why(exc)}")) from None


def _why(exc: Exception) -> str:
    """Hydra's message on one line: a missing option's alternatives comma-separated, its config search
    path (the folders Hydra looked in, the same for every such error) left out."""
    text = str(exc).split("\nConfig search path:")[0]
    head, sep, options = text.partition("\n\nAvailable options in ")
    if sep:
        group, _, names = options.partition(":")
        return f"{head}; available options in {group}: {', '.join(names.split())}"
    return " ".join(text.split())


def compose_options(composed: Composed, group: str, options: Sequence[str]) -> dict[str, DictConfig]:
    """The unresolved node of each option of ``group``, composed as if chosen on the command line."""
    if group not in config_groups():
        raise ConfigError(f"search.{group}: only config groups {list(config_groups())} can be searched as a choice")
    kept = [o for o in composed.overrides if not o.lstrip("+~").split("=")[0].split(".")[0] == group]
    nodes = {}
    for option in options:
        if option == composed.choices.get(group) and kept == composed.overrides:
            # Chosen already and not overridden on the command line: the composed node is the one
            # a composition would give (each costs ~90 ms), copied so that neither aliases the other.
            nodes[option] = copy.deepcopy(composed.cfg)[group]
            continue
        try:
            cfg, _, _ = _compose([*kept, f"{group}={option}"])
        except ConfigError as exc:
            raise ConfigError(f"search.{group}.options.{option}: {exc}") from None
        nodes[option] = cfg[group]
    return nodes
