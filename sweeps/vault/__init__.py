"""The test vault of a study: its state in the storage, the one claim, the opening and its note.
``python -m sweeps.vault`` is its command line (``__main__``, an entry point: never imported here).

Imports the layers below: :mod:`sweeps.trial` and lower.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.vault.__main__ import main
    from sweeps.vault._vault import (
        Vault,
        VaultBusy,
        VaultRefused,
        check_seal,
        claim,
        describe_result,
        open_vault,
        open_when_due,
        refuse_tuning_after_opening,
        vault_summary,
    )

__all__ = [
    "Vault",
    "VaultBusy",
    "VaultRefused",
    "check_seal",
    "claim",
    "describe_result",
    "main",
    "open_vault",
    "open_when_due",
    "refuse_tuning_after_opening",
    "vault_summary",
]

_HOMES = {
    "Vault": "sweeps.vault._vault",
    "VaultBusy": "sweeps.vault._vault",
    "VaultRefused": "sweeps.vault._vault",
    "check_seal": "sweeps.vault._vault",
    "claim": "sweeps.vault._vault",
    "describe_result": "sweeps.vault._vault",
    "main": "sweeps.vault.__main__",
    "open_vault": "sweeps.vault._vault",
    "open_when_due": "sweeps.vault._vault",
    "refuse_tuning_after_opening": "sweeps.vault._vault",
    "vault_summary": "sweeps.vault._vault",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
