"""Storages: storage strings (validation, masking, opening) and the journal file's heartbeats.

The lowest layer of ``sweeps``: it imports no other sub-package.

The public names below load on first use (PEP 562), as in :mod:`sweeps`: importing one module of this
package (e.g. the plot renderer's) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.storage._internals import study_id, study_storage, trial_id
    from sweeps.storage._journal import (
        HEARTBEAT_ATTR,
        HeartbeatGrpcStorageProxy,
        HeartbeatJournalStorage,
        heartbeat_time,
    )
    from sweeps.storage._url import (
        RetryStaleTrial,
        artifact_dir,
        check_storage,
        check_workers,
        dashboard_command,
        grpc_address,
        is_grpc,
        is_url,
        mask,
        mask_text,
        open_database,
        open_storage,
        probe_storage,
        storage_file,
    )

__all__ = [
    "HEARTBEAT_ATTR",
    "HeartbeatGrpcStorageProxy",
    "HeartbeatJournalStorage",
    "RetryStaleTrial",
    "artifact_dir",
    "check_storage",
    "check_workers",
    "dashboard_command",
    "grpc_address",
    "heartbeat_time",
    "is_grpc",
    "is_url",
    "mask",
    "mask_text",
    "open_database",
    "open_storage",
    "probe_storage",
    "storage_file",
    "study_id",
    "study_storage",
    "trial_id",
]

_HOMES = {
    "HEARTBEAT_ATTR": "sweeps.storage._journal",
    "HeartbeatGrpcStorageProxy": "sweeps.storage._journal",
    "HeartbeatJournalStorage": "sweeps.storage._journal",
    "RetryStaleTrial": "sweeps.storage._url",
    "artifact_dir": "sweeps.storage._url",
    "check_storage": "sweeps.storage._url",
    "check_workers": "sweeps.storage._url",
    "dashboard_command": "sweeps.storage._url",
    "grpc_address": "sweeps.storage._url",
    "heartbeat_time": "sweeps.storage._journal",
    "is_grpc": "sweeps.storage._url",
    "is_url": "sweeps.storage._url",
    "mask": "sweeps.storage._url",
    "mask_text": "sweeps.storage._url",
    "open_database": "sweeps.storage._url",
    "open_storage": "sweeps.storage._url",
    "probe_storage": "sweeps.storage._url",
    "storage_file": "sweeps.storage._url",
    "study_id": "sweeps.storage._internals",
    "study_storage": "sweeps.storage._internals",
    "trial_id": "sweeps.storage._internals",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
