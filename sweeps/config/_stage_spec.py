"""What an experiment's ``stages:`` list may say: the stage spec and its validation (no Optuna, no
experiment), so that config validation can check stages without importing the stage runner."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from sweeps._errors import ConfigError

__all__ = ["CARRY", "STAGE_KEYS", "Stage", "parse_stages"]

STAGE_KEYS = {"name", "n_trials", "search", "optimizer", "carry", "lr_scale"}
CARRY = ("fixed", "narrow")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: its study suffix, trial budget, search, optimizer option and how it carries."""

    name: str
    n_trials: int
    search: dict[str, Any]
    optimizer: str | None = None
    carry: str = "fixed"
    lr_scale: float = 1.0


def parse_stages(stages: Any) -> list[Stage]:
    """Validates an experiment's ``stages`` list.

    Raises:
        ConfigError: naming the stage, the key and what is allowed.
    """
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"stages must be a non-empty list of stages, got {stages!r}")
    parsed, names = [], set()
    for index, spec in enumerate(stages):
        where = f"stages[{index}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a mapping with keys {sorted(STAGE_KEYS)}, got {spec!r}")
        unknown = set(spec) - STAGE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name in names:
            raise ConfigError(f"{where}.name must be a unique lowercase identifier, got {name!r}")
        names.add(name)
        n_trials = spec.get("n_trials")
        if not isinstance(n_trials, int) or n_trials < 1:
            raise ConfigError(f"{where}.n_trials must be an int >= 1, got {n_trials!r}")
        carry = spec.get("carry", "fixed")
        if carry not in CARRY:
            raise ConfigError(f"{where}.carry must be one of {list(CARRY)}, got {carry!r}")
        lr_scale = spec.get("lr_scale", 1.0)
        if not isinstance(lr_scale, (int, float)) or lr_scale <= 0:
            raise ConfigError(f"{where}.lr_scale must be a number > 0, got {lr_scale!r}")
        search = spec.get("search") or {}
        if not isinstance(search, Mapping):
            raise ConfigError(f"{where}.search must be a mapping, got {search!r}")
        parsed.append(Stage(name, n_trials, dict(search), spec.get("optimizer"), carry, float(lr_scale)))
    return parsed
