"""One trial: its objective, preflight checks, monitor, heartbeat, progress line and training report
(note, plots drawn by a renderer process, checkpoints).

Imports the layers below: :mod:`sweeps.study` and lower.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.trial._heartbeat import Heartbeat, heartbeat_interval
    from sweeps.trial._monitor import make_monitor
    from sweeps.trial._objective import Objective
    from sweeps.trial._plots import PLACEHOLDER_PNG, draw, main
    from sweeps.trial._preflight import (
        CHECKS,
        EXIT_UNFIXABLE,
        PreflightFailed,
        StopOnUnfixable,
        fingerprint,
        preflight,
        render,
        run_checks,
        searched_inputs,
    )
    from sweeps.trial._progress import EpochProgress, is_terminal
    from sweeps.trial._render import COMMAND, Renderer
    from sweeps.trial._report import (
        artifact_store,
        artifact_url,
        plot_data,
        preflight_rows,
        render_note,
        report_trial,
        store_folder,
    )

__all__ = [
    "CHECKS",
    "COMMAND",
    "EXIT_UNFIXABLE",
    "EpochProgress",
    "Heartbeat",
    "Objective",
    "PLACEHOLDER_PNG",
    "PreflightFailed",
    "Renderer",
    "StopOnUnfixable",
    "artifact_store",
    "artifact_url",
    "draw",
    "fingerprint",
    "heartbeat_interval",
    "is_terminal",
    "main",
    "make_monitor",
    "plot_data",
    "preflight",
    "preflight_rows",
    "render",
    "render_note",
    "report_trial",
    "run_checks",
    "searched_inputs",
    "store_folder",
]

_HOMES = {
    "CHECKS": "sweeps.trial._preflight",
    "COMMAND": "sweeps.trial._render",
    "EXIT_UNFIXABLE": "sweeps.trial._preflight",
    "EpochProgress": "sweeps.trial._progress",
    "Heartbeat": "sweeps.trial._heartbeat",
    "Objective": "sweeps.trial._objective",
    "PLACEHOLDER_PNG": "sweeps.trial._plots",
    "PreflightFailed": "sweeps.trial._preflight",
    "Renderer": "sweeps.trial._render",
    "StopOnUnfixable": "sweeps.trial._preflight",
    "artifact_store": "sweeps.trial._report",
    "artifact_url": "sweeps.trial._report",
    "draw": "sweeps.trial._plots",
    "fingerprint": "sweeps.trial._preflight",
    "heartbeat_interval": "sweeps.trial._heartbeat",
    "is_terminal": "sweeps.trial._progress",
    "main": "sweeps.trial._plots",
    "make_monitor": "sweeps.trial._monitor",
    "plot_data": "sweeps.trial._report",
    "preflight": "sweeps.trial._preflight",
    "preflight_rows": "sweeps.trial._report",
    "render": "sweeps.trial._preflight",
    "render_note": "sweeps.trial._report",
    "report_trial": "sweeps.trial._report",
    "run_checks": "sweeps.trial._preflight",
    "searched_inputs": "sweeps.trial._preflight",
    "store_folder": "sweeps.trial._report",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
