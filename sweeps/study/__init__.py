"""A study in its storage: creation and metadata, machine records, trial accounting, ``trials.csv``,
and seed-robust selection with its statistics.

Imports the layers below: :mod:`sweeps.experiment`, :mod:`sweeps.config`, :mod:`sweeps.storage`.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.study._records import PREFIX, PREFLIGHT_CACHE, read, write
    from sweeps.study._select import (
        RESULT,
        SOURCE,
        Linked,
        clear,
        current,
        due,
        extra_seed,
        finish,
        linked_experiment,
        linked_name,
        load_linked,
        md_escape,
        note_section,
        prepare,
        provenance,
        top_configurations,
        vault_run,
        winner_trial,
        write_csv,
        write_note,
    )
    from sweeps.study._stats import Comparison, bootstrap_mean_ci, compare, median_or_worst
    from sweeps.study._study import (
        config_fingerprint,
        git_commit,
        make_pruner,
        make_sampler,
        open_study,
        recorded_experiment,
        strategy_notices,
        versions,
    )
    from sweeps.study._table import KEY_ATTRS, trials_table
    from sweeps.study._trials import (
        FINISHED,
        INTERRUPTED,
        SURPLUS,
        RunningTally,
        Tally,
        count_trials,
        end_reason,
        holds_slot,
        retried_numbers,
        tally,
    )

__all__ = [
    "Comparison",
    "FINISHED",
    "INTERRUPTED",
    "KEY_ATTRS",
    "Linked",
    "PREFIX",
    "PREFLIGHT_CACHE",
    "RESULT",
    "RunningTally",
    "SOURCE",
    "SURPLUS",
    "Tally",
    "bootstrap_mean_ci",
    "clear",
    "compare",
    "config_fingerprint",
    "count_trials",
    "current",
    "due",
    "end_reason",
    "extra_seed",
    "finish",
    "git_commit",
    "holds_slot",
    "linked_experiment",
    "linked_name",
    "load_linked",
    "make_pruner",
    "make_sampler",
    "md_escape",
    "median_or_worst",
    "note_section",
    "open_study",
    "prepare",
    "provenance",
    "read",
    "recorded_experiment",
    "retried_numbers",
    "strategy_notices",
    "tally",
    "top_configurations",
    "trials_table",
    "vault_run",
    "versions",
    "winner_trial",
    "write",
    "write_csv",
    "write_note",
]

_HOMES = {
    "Comparison": "sweeps.study._stats",
    "FINISHED": "sweeps.study._trials",
    "INTERRUPTED": "sweeps.study._trials",
    "KEY_ATTRS": "sweeps.study._table",
    "Linked": "sweeps.study._select",
    "PREFIX": "sweeps.study._records",
    "PREFLIGHT_CACHE": "sweeps.study._records",
    "RESULT": "sweeps.study._select",
    "RunningTally": "sweeps.study._trials",
    "SOURCE": "sweeps.study._select",
    "SURPLUS": "sweeps.study._trials",
    "Tally": "sweeps.study._trials",
    "bootstrap_mean_ci": "sweeps.study._stats",
    "clear": "sweeps.study._select",
    "compare": "sweeps.study._stats",
    "config_fingerprint": "sweeps.study._study",
    "count_trials": "sweeps.study._trials",
    "current": "sweeps.study._select",
    "due": "sweeps.study._select",
    "end_reason": "sweeps.study._trials",
    "extra_seed": "sweeps.study._select",
    "finish": "sweeps.study._select",
    "git_commit": "sweeps.study._study",
    "holds_slot": "sweeps.study._trials",
    "linked_experiment": "sweeps.study._select",
    "linked_name": "sweeps.study._select",
    "load_linked": "sweeps.study._select",
    "make_pruner": "sweeps.study._study",
    "make_sampler": "sweeps.study._study",
    "md_escape": "sweeps.study._select",
    "median_or_worst": "sweeps.study._stats",
    "note_section": "sweeps.study._select",
    "open_study": "sweeps.study._study",
    "prepare": "sweeps.study._select",
    "provenance": "sweeps.study._select",
    "read": "sweeps.study._records",
    "recorded_experiment": "sweeps.study._study",
    "retried_numbers": "sweeps.study._trials",
    "strategy_notices": "sweeps.study._study",
    "tally": "sweeps.study._trials",
    "top_configurations": "sweeps.study._select",
    "trials_table": "sweeps.study._table",
    "vault_run": "sweeps.study._select",
    "versions": "sweeps.study._study",
    "winner_trial": "sweeps.study._select",
    "write": "sweeps.study._records",
    "write_csv": "sweeps.study._select",
    "write_note": "sweeps.study._select",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
