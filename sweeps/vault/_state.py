"""The test vault's state in its study (PRACTICES.md section 1): the seal made when the study is
created, checked on every run, the claims, the result and the audit list.

What lives where in the study (plain JSON):

- system attrs (``sweeps/study/_records.py``) ``vault.seal`` (fingerprint, sizes, duplicates, seal id),
  ``vault.claims`` (one entry per opening: who, when, forced), ``vault.result`` (the latest opening)
  and ``vault.audit`` (every sealing, opening and forced action, in order);
- user attrs ``vault`` (one short line: sealed, claimed or opened with the test metrics) and
  ``vault.duplicates`` (count of test samples shared with train/validation), and the study's note.
"""

from __future__ import annotations

import datetime
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, Callable

import optuna

from sweeps._errors import ConfigError
from sweeps.storage._internals import study_storage
from sweeps.study import _records

if TYPE_CHECKING:
    from sweeps.experiment._data import PreparedData

__all__ = [
    "AUDIT", "CLAIMS", "RESULT", "SEAL", "Say", "Vault", "VaultBusy", "VaultRefused", "check_seal", "describe_result",
    "describe_state", "now", "refuse_tuning_after_opening", "vault_summary", "who",
]

# Record keys (sweeps/study/_records.py) and user attrs.
SEAL, DUPLICATES, RESULT, AUDIT, CLAIMS = (
    "vault.seal", "vault.duplicates", "vault.result", "vault.audit", "vault.claims"
)
STATE = "vault"  # the short user attr


Say = Callable[[str], None]


class VaultRefused(ConfigError):
    """An opening or more tuning that the vault refuses; the command line exits 2."""


class VaultBusy(RuntimeError):
    """Another process claimed this opening first."""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def who() -> dict[str, Any]:
    return {"at": now(), "host": socket.gethostname(), "pid": os.getpid()}


class Vault:
    """A study's vault as recorded in its storage; every property reads the storage afresh."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    @property
    def seal(self) -> dict[str, Any] | None:
        return _records.read(self.study, SEAL)

    @property
    def result(self) -> dict[str, Any] | None:
        return _records.read(self.study, RESULT)

    @property
    def audit(self) -> list[dict[str, Any]]:
        return list(_records.read(self.study, AUDIT, []))

    @property
    def forced(self) -> list[dict[str, Any]]:
        """The audit entries of forced actions: a second opening, or tuning after an opening."""
        return [e for e in self.audit if e.get("forced")]

    def claim_name(self, opening: int) -> str:
        """The claim study of an opening made before claims moved into the study (legacy)."""
        return f"{self.study.study_name}.vault-{self.seal['id']}-open-{opening}"

    def lock_name(self) -> str:
        # The seal id keeps a deleted study's lock apart from that of a new study of the same name.
        return f"{self.study.study_name}.vault-{self.seal['id']}-lock"

    def claims(self) -> list[dict[str, Any]]:
        """This study's claims, one per opening, oldest first."""
        if self.seal is None:
            return []
        recorded = list(_records.read(self.study, CLAIMS, []))
        return recorded or self._legacy_claims()

    def _legacy_claims(self) -> list[dict[str, Any]]:
        storage, out = study_storage(self.study), []
        for opening in range(1, 10_000):
            try:
                study_id = storage.get_study_id_from_name(self.claim_name(opening))
            except KeyError:
                return out
            out.append({"opening": opening, **storage.get_study_user_attrs(study_id)})
        return out

    def state(self) -> str:
        """``sealed``, ``opened``, or ``claimed`` (an opening began and recorded no result yet)."""
        claims = self.claims()
        if not claims:
            return "sealed"
        result = self.result
        return "opened" if result and result.get("opening") == claims[-1]["opening"] else "claimed"

    def append_audit(self, event: dict[str, Any]) -> None:
        # Only the holder of a claim, or a sealer of a new study, writes here: no concurrent writers.
        _records.write(self.study, AUDIT, [*self.audit, {**event, **who()}])

    def label(self) -> None:
        """Sets the short user attr ``vault``: what `optuna studies` and the dashboard show."""
        result, claims = self.result, self.claims()
        if result and claims and result.get("opening") == claims[-1]["opening"]:
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
            text = (f"opened #{result['opening']}{' FORCED' if result.get('forced') else ''}: {metrics} "
                    f"(trial {result['trial']})")
        elif claims:
            text = f"claimed #{claims[-1]['opening']}, no result yet"
        else:
            text = f"sealed: {self.seal.get('n_test', '?')} test samples"
        self.study.set_user_attr(STATE, text)


def check_seal(study: optuna.Study, data: PreparedData, say: Say) -> Vault:
    """Seals a new study's test split, or checks that the data still cut the sealed one.

    Raises:
        ConfigError: the test split's fingerprint differs from the one sealed in the study.
    """
    vault, sealed = Vault(study), data.sealed
    seal = vault.seal
    if seal is None:
        seal = {"id": uuid.uuid4().hex[:12], "fingerprint": sealed.fingerprint, "n_test": sealed.n_samples,
                "n_train": len(data.y_train), "n_val": len(data.y_val), "duplicates": data.duplicates.count,
                "dropped_duplicates": data.n_dropped, "sealed_at": now()}
        _records.write(study, SEAL, seal)
        study.set_user_attr(DUPLICATES, data.duplicates.count)
        vault.append_audit({"event": "sealed", "fingerprint": sealed.fingerprint, "n_test": sealed.n_samples})
        vault.label()
        say(f"test split sealed: {sealed.n_samples} samples, fingerprint {sealed.fingerprint[:16]}")
        _say_duplicates(data, say)
        return vault
    if seal["fingerprint"] != sealed.fingerprint:
        name = study.study_name
        raise ConfigError(
            f"the test split changed since study {name!r} was sealed (fingerprint {seal['fingerprint'][:16]} -> "
            f"{sealed.fingerprint[:16]}, {seal['n_test']} -> {sealed.n_samples} samples): the data (data.*) or the "
            f"split changed, so trials would be compared on other data; restore the data, or start a new study "
            f"with sweep.study_name={name}-2"
        )
    return vault


def _say_duplicates(data: PreparedData, say: Say) -> None:
    count = data.duplicates.count
    if count == 0:
        return
    if data.n_dropped:
        say(f"leakage check: dropped {data.n_dropped} test samples that also occur in train/validation "
            "(vault.drop_duplicates=true)")
        return
    say(f"leakage check: {count} test samples also occur in train/validation (exact duplicates); the test "
        "score will overestimate; vault.drop_duplicates=true drops them before sealing (a new study)")


def describe_result(result: dict[str, Any]) -> str:
    """One line for a recorded opening."""
    ci = result.get("test_ci") or {}
    metrics = " ".join(f"{k}={v:.4f}" + (f" (95% CI {ci[k][0]:.4f}-{ci[k][1]:.4f})" if k in ci else "")
                       for k, v in result["test"].items())
    forced = ", FORCED" if result.get("forced") else ""
    return (f"{metrics} for trial {result['trial']} ({result['metric']}={result['val_value']:.4f}; final model: "
            f"{result['final_model']}, {result['epochs']} epochs, seed {result['seed']}); opening "
            f"#{result['opening']}{forced} at {result['opened_at']} by {result['host']} (pid {result['pid']})")


def describe_state(vault: Vault) -> str:
    result, claims = vault.result, vault.claims()
    if result and claims and result.get("opening") == claims[-1]["opening"]:
        return f"the test vault of study {vault.study.study_name!r} was opened: {describe_result(result)}"
    claim = claims[-1]
    return (f"the test vault of study {vault.study.study_name!r} was claimed (opening #{claim['opening']}) at "
            f"{claim.get('at', 'now')} by {claim.get('host', '?')} (pid {claim.get('pid', '?')}) and holds no "
            "result yet (if that process died, "
            "open it again with vault.reopen=true)")


def refuse_tuning_after_opening(vault: Vault, reopen: bool, n_finished: int, n_trials: int, say: Say) -> None:
    """Refuses to add trials to a study whose vault was opened, unless ``reopen`` (then audited).

    Raises:
        VaultRefused: the vault was opened and ``reopen`` is false.
    """
    if n_finished >= n_trials or not vault.claims():
        return
    if not reopen:
        raise VaultRefused(
            f"{describe_state(vault)}. Adding trials now ({n_finished} -> {n_trials}) would tune after looking at the "
            f"test set, which spoils the estimate; start a new study (sweep.study_name={vault.study.study_name}-2), or "
            "force it with vault.reopen=true (recorded in the study's audit list and flagged in every export)"
        )
    vault.append_audit({"event": "tuning_after_opening", "forced": True, "n_finished": n_finished,
                        "n_trials": n_trials})
    say(f"WARNING: {describe_state(vault)}; tuning on ({n_finished} -> {n_trials} trials) because vault.reopen=true: "
        "recorded in the audit list; a later test score is no longer an honest estimate")


def vault_summary(study: optuna.Study) -> dict[str, Any] | None:
    """What exports carry about the vault: state, seal, the latest result and forced actions."""
    vault = Vault(study)
    seal = vault.seal
    if seal is None:
        return None
    forced = vault.forced
    return {"state": vault.state(), "fingerprint": seal["fingerprint"], "n_test": seal["n_test"],
            "duplicates": seal["duplicates"], "dropped_duplicates": seal["dropped_duplicates"],
            "result": vault.result, "forced": bool(forced), "forced_actions": forced, "audit": vault.audit}
