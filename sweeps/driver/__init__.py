"""The sweep: the trial loop, worker processes, the driver, staged sweeps, exports, the Hydra
application behind ``python -m sweeps`` and what Hydra keeps of a run.

The top layer: it imports every other sub-package, and none imports it.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.driver._app import run_app
    from sweeps.driver._driver import (
        EXIT_FAILURES,
        EXIT_NO_COMPLETED,
        EXIT_OK,
        EXIT_RECYCLE,
        EXIT_SIGINT,
        EXIT_SIGTERM,
        EXIT_UNFIXABLE,
        run,
    )
    from sweeps.driver._export import Exported, export_study, plain
    from sweeps.driver._joblog import JobOutput, mask_file, masked_log_records, masked_stderr
    from sweeps.driver._loop import MIN_TRIALS_FOR_FAILURE_RATE, best_trial, run_trials, storage_for
    from sweeps.driver._staged import StagedVault, open_staged_vault, run_stages, staged_vault
    from sweeps.driver._workers import die_with_parent, run_workers, worker_main

__all__ = [
    "EXIT_FAILURES",
    "EXIT_NO_COMPLETED",
    "EXIT_OK",
    "EXIT_RECYCLE",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_UNFIXABLE",
    "Exported",
    "JobOutput",
    "MIN_TRIALS_FOR_FAILURE_RATE",
    "StagedVault",
    "best_trial",
    "die_with_parent",
    "export_study",
    "mask_file",
    "masked_log_records",
    "masked_stderr",
    "open_staged_vault",
    "plain",
    "run",
    "run_app",
    "run_stages",
    "run_trials",
    "run_workers",
    "staged_vault",
    "storage_for",
    "worker_main",
]

_HOMES = {
    "EXIT_FAILURES": "sweeps.driver._driver",
    "EXIT_NO_COMPLETED": "sweeps.driver._driver",
    "EXIT_OK": "sweeps.driver._driver",
    "EXIT_RECYCLE": "sweeps.driver._driver",
    "EXIT_SIGINT": "sweeps.driver._driver",
    "EXIT_SIGTERM": "sweeps.driver._driver",
    "EXIT_UNFIXABLE": "sweeps.driver._driver",
    "Exported": "sweeps.driver._export",
    "JobOutput": "sweeps.driver._joblog",
    "MIN_TRIALS_FOR_FAILURE_RATE": "sweeps.driver._loop",
    "StagedVault": "sweeps.driver._staged",
    "best_trial": "sweeps.driver._loop",
    "die_with_parent": "sweeps.driver._workers",
    "export_study": "sweeps.driver._export",
    "mask_file": "sweeps.driver._joblog",
    "masked_log_records": "sweeps.driver._joblog",
    "masked_stderr": "sweeps.driver._joblog",
    "open_staged_vault": "sweeps.driver._staged",
    "plain": "sweeps.driver._export",
    "run": "sweeps.driver._driver",
    "run_app": "sweeps.driver._app",
    "run_stages": "sweeps.driver._staged",
    "run_trials": "sweeps.driver._loop",
    "run_workers": "sweeps.driver._workers",
    "staged_vault": "sweeps.driver._staged",
    "storage_for": "sweeps.driver._loop",
    "worker_main": "sweeps.driver._workers",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
