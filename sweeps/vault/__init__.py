"""The test vault of a study: its state in the storage (``_state``), the one claim (``_claim``), the
opening (``_open``) and its note (``_note``).
``python -m sweeps.vault`` is its command line (``__main__``, an entry point: never imported here).

Imports the layers below: :mod:`sweeps.trial` and lower.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.vault._claim import claim
    from sweeps.vault._note import write_note
    from sweeps.vault._open import open_vault, open_when_due, retrain_config
    from sweeps.vault._state import (
        AUDIT,
        CLAIMS,
        RESULT,
        SEAL,
        Say,
        Vault,
        VaultBusy,
        VaultRefused,
        check_seal,
        describe_result,
        describe_state,
        now,
        refuse_tuning_after_opening,
        vault_summary,
        who,
    )

__all__ = [
    "AUDIT",
    "CLAIMS",
    "RESULT",
    "SEAL",
    "Say",
    "Vault",
    "VaultBusy",
    "VaultRefused",
    "check_seal",
    "claim",
    "describe_result",
    "describe_state",
    "now",
    "open_vault",
    "open_when_due",
    "refuse_tuning_after_opening",
    "retrain_config",
    "vault_summary",
    "who",
    "write_note",
]

_HOMES = {
    "AUDIT": "sweeps.vault._state",
    "CLAIMS": "sweeps.vault._state",
    "RESULT": "sweeps.vault._state",
    "SEAL": "sweeps.vault._state",
    "Say": "sweeps.vault._state",
    "Vault": "sweeps.vault._state",
    "VaultBusy": "sweeps.vault._state",
    "VaultRefused": "sweeps.vault._state",
    "check_seal": "sweeps.vault._state",
    "claim": "sweeps.vault._claim",
    "describe_result": "sweeps.vault._state",
    "describe_state": "sweeps.vault._state",
    "now": "sweeps.vault._state",
    "open_vault": "sweeps.vault._open",
    "open_when_due": "sweeps.vault._open",
    "refuse_tuning_after_opening": "sweeps.vault._state",
    "retrain_config": "sweeps.vault._open",
    "vault_summary": "sweeps.vault._state",
    "who": "sweeps.vault._state",
    "write_note": "sweeps.vault._note",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
