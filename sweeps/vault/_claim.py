"""The one claim of an opening.

The claim is a read-check-write of ``vault.claims`` under a lock: the lock is a study named
``<study>.vault-<seal id>-lock``, created (a study name is unique in every Optuna storage, so of several
processes exactly one succeeds; the others get ``DuplicatedStudyError``) and deleted again within
milliseconds, so ``optuna studies`` never shows it. See docs/vault.md. Studies opened before this
scheme hold their claims as studies named ``<study>.vault-<seal id>-open-<k>``; those still count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.exceptions import DuplicatedStudyError
from optuna.study import StudyDirection

from sweeps._interrupt import deferred
from sweeps.storage._internals import study_storage
from sweeps.study import _records
from sweeps.vault._state import CLAIMS, Vault, VaultBusy, who

if TYPE_CHECKING:
    pass

__all__ = ["claim"]


def claim(vault: Vault, opening: int, forced: bool) -> None:
    """Records this opening's claim in the study; exactly one process can.

    Under the lock (a study created and deleted again, see the module docstring) it reads the claims
    and appends this one unless another process recorded opening ``opening`` already. Signals wait
    until the lock is gone, so only a killed process can leave it behind.

    Raises:
        VaultBusy: another process holds the lock, or claimed this opening first.
    """
    storage = study_storage(vault.study)
    busy = f"another process claimed opening #{opening} of study {vault.study.study_name!r}"
    with deferred():
        try:
            lock_id = storage.create_new_study([StudyDirection.MINIMIZE], vault.lock_name())
        except DuplicatedStudyError:
            raise VaultBusy(f"{busy} (if no process is opening it, a killed one left the lock behind: delete it with "
                            f"`optuna delete-study --study-name {vault.lock_name()} --storage STORAGE`)") from None
        try:
            claims = vault.claims()
            if any(c["opening"] >= opening for c in claims):
                raise VaultBusy(busy)
            _records.write(vault.study, CLAIMS, [*claims, {"opening": opening, "forced": forced, **who()}])
        finally:
            storage.delete_study(lock_id)
    vault.label()
