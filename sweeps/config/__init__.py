"""Configuration: Hydra composition (once per run), the schemas of the driver's own nodes, the search
space, the stage spec and the folders a sweep writes to.

Imports :mod:`sweeps.storage` only.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.config._compose import CONF_DIR, Composed, compose_experiment, compose_hydra, compose_options, own_hydra
    from sweeps.config._destinations import check_destinations, unwritable
    from sweeps.config._schema import (
        PRUNERS,
        SAMPLERS,
        SEARCHABLE,
        MonitorConfig,
        PreflightConfig,
        SelectConfig,
        check_averaging_keys,
        check_study_name,
        config_groups,
        direction_of,
        frozen_keys,
        monitor_config,
        preflight_config,
        run_keys,
        select_config,
        set_direction,
        top_level_keys,
        validate_structure,
    )
    from sweeps.config._space import GroupChoice, Param, Probe, SearchSpace, compile_space, config_for, flatten_search
    from sweeps.config._stage_spec import CARRY, STAGE_KEYS, Stage, parse_stages

__all__ = [
    "CARRY",
    "CONF_DIR",
    "Composed",
    "GroupChoice",
    "MonitorConfig",
    "PRUNERS",
    "Param",
    "PreflightConfig",
    "Probe",
    "SAMPLERS",
    "SEARCHABLE",
    "STAGE_KEYS",
    "SearchSpace",
    "SelectConfig",
    "Stage",
    "check_averaging_keys",
    "check_destinations",
    "check_study_name",
    "compile_space",
    "compose_experiment",
    "compose_hydra",
    "compose_options",
    "config_for",
    "config_groups",
    "direction_of",
    "flatten_search",
    "frozen_keys",
    "monitor_config",
    "own_hydra",
    "parse_stages",
    "preflight_config",
    "run_keys",
    "select_config",
    "set_direction",
    "top_level_keys",
    "unwritable",
    "validate_structure",
]

_HOMES = {
    "CARRY": "sweeps.config._stage_spec",
    "CONF_DIR": "sweeps.config._compose",
    "Composed": "sweeps.config._compose",
    "GroupChoice": "sweeps.config._space",
    "MonitorConfig": "sweeps.config._schema",
    "PRUNERS": "sweeps.config._schema",
    "Param": "sweeps.config._space",
    "PreflightConfig": "sweeps.config._schema",
    "Probe": "sweeps.config._space",
    "SAMPLERS": "sweeps.config._schema",
    "SEARCHABLE": "sweeps.config._schema",
    "STAGE_KEYS": "sweeps.config._stage_spec",
    "SearchSpace": "sweeps.config._space",
    "SelectConfig": "sweeps.config._schema",
    "Stage": "sweeps.config._stage_spec",
    "check_averaging_keys": "sweeps.config._schema",
    "check_destinations": "sweeps.config._destinations",
    "check_study_name": "sweeps.config._schema",
    "compile_space": "sweeps.config._space",
    "compose_experiment": "sweeps.config._compose",
    "compose_hydra": "sweeps.config._compose",
    "compose_options": "sweeps.config._compose",
    "config_for": "sweeps.config._space",
    "config_groups": "sweeps.config._schema",
    "direction_of": "sweeps.config._schema",
    "flatten_search": "sweeps.config._space",
    "frozen_keys": "sweeps.config._schema",
    "monitor_config": "sweeps.config._schema",
    "own_hydra": "sweeps.config._compose",
    "parse_stages": "sweeps.config._stage_spec",
    "preflight_config": "sweeps.config._schema",
    "run_keys": "sweeps.config._schema",
    "select_config": "sweeps.config._schema",
    "set_direction": "sweeps.config._schema",
    "top_level_keys": "sweeps.config._schema",
    "unwritable": "sweeps.config._destinations",
    "validate_structure": "sweeps.config._schema",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
