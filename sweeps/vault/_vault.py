"""The test vault (PRACTICES.md section 1): the test split is sealed when a study is created,
checked on every run, and opened exactly once, for the winner (the seed-robust one of sweeps/study/_select.py,
else the best trial), at the end.

What lives where in the study (plain JSON):

- system attrs (``sweeps/study/_records.py``) ``vault.seal`` (fingerprint, sizes, duplicates, seal id),
  ``vault.claims`` (one entry per opening: who, when, forced), ``vault.result`` (the latest opening)
  and ``vault.audit`` (every sealing, opening and forced action, in order);
- user attrs ``vault`` (one short line: sealed, claimed or opened with the test metrics) and
  ``vault.duplicates`` (count of test samples shared with train/validation), and the study's note.

The claim is a read-check-write of ``vault.claims`` under a lock: the lock is a study named
``<study>.vault-<seal id>-lock``, created (a study name is unique in every Optuna storage, so of several
processes exactly one succeeds; the others get ``DuplicatedStudyError``) and deleted again within
milliseconds, so ``optuna studies`` never shows it. See docs/vault.md. Studies opened before this
scheme hold their claims as studies named ``<study>.vault-<seal id>-open-<k>``; those still count.
"""

from __future__ import annotations

import datetime
import os
import socket
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import optuna
import torch
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import DuplicatedStudyError
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from practices.averaging import swa_start
from practices.evaluation import per_sample
from practices.train import evaluate
from sweeps._errors import ConfigError
from sweeps._interrupt import Interrupted, deferred
from sweeps._markdown import literal
from sweeps.config._destinations import check_destinations
from sweeps.experiment._build import build, train, trial_seed
from sweeps.experiment._seal import unseal
from sweeps.storage._internals import study_storage
from sweeps.storage._url import artifact_dir
from sweeps.study import _records
from sweeps.study._select import note_section, vault_run
from sweeps.study._stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_mean_ci
from sweeps.study._trials import count_trials

if TYPE_CHECKING:
    from sweeps.experiment._experiment import Experiment, PreparedData

__all__ = [
    "VaultBusy", "VaultRefused", "Vault", "check_seal", "claim", "refuse_tuning_after_opening",
    "open_vault", "open_when_due", "describe_result", "vault_summary",
]

SEAL, DUPLICATES, RESULT, AUDIT, CLAIMS = (
    "vault.seal", "vault.duplicates", "vault.result", "vault.audit", "vault.claims"
)
STATE = "vault"  # the short user attr
CHECKPOINT_ATTR = "artifact.best_checkpoint"
Say = Callable[[str], None]


class VaultRefused(ConfigError):
    """An opening or more tuning that the vault refuses; the command line exits 2."""


class VaultBusy(RuntimeError):
    """Another process claimed this opening first."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _who() -> dict[str, Any]:
    return {"at": _now(), "host": socket.gethostname(), "pid": os.getpid()}


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
        _records.write(self.study, AUDIT, [*self.audit, {**event, **_who()}])

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
                "dropped_duplicates": data.n_dropped, "sealed_at": _now()}
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


def _recorded(vault: Vault) -> str:
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
            f"{_recorded(vault)}. Adding trials now ({n_finished} -> {n_trials}) would tune after looking at the test "
            f"set, which spoils the estimate; start a new study (sweep.study_name={vault.study.study_name}-2), or "
            "force it with vault.reopen=true (recorded in the study's audit list and flagged in every export)"
        )
    vault.append_audit({"event": "tuning_after_opening", "forced": True, "n_finished": n_finished,
                        "n_trials": n_trials})
    say(f"WARNING: {_recorded(vault)}; tuning on ({n_finished} -> {n_trials} trials) because vault.reopen=true: "
        "recorded in the audit list; a later test score is no longer an honest estimate")


def _final_model(
    best: FrozenTrial, exp: Experiment, data: PreparedData, storage: str, mode: str, say: Say
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The best trial's final model: its checkpoint (``mode=checkpoint``, where saved) or a retrain."""
    cfg = exp.config(best.params)
    seed = best.user_attrs.get("seed", trial_seed(cfg.sweep.seed, best.number))
    epochs = int(best.user_attrs.get("best_epoch") or cfg.trainer.max_epochs)
    if mode == "checkpoint":
        artifact_id = best.user_attrs.get(CHECKPOINT_ATTR)
        folder = artifact_dir(storage, cfg.sweep.artifact_dir)
        if artifact_id and (folder / artifact_id).is_file():
            built = build(cfg, data.in_shape, data.n_classes, seed)
            try:
                built.model.load_state_dict(_download_state(folder, artifact_id))
                return built.model, {"final_model": "checkpoint", "artifact_id": artifact_id, "epochs": epochs,
                                     "seed": seed}
            except Exception as exc:  # a foreign or damaged file can fail in any way; the claim is already made
                say(f"note: checkpoint {artifact_id} of trial {best.number} does not load ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); retraining it instead")
        else:
            say(f"note: trial {best.number} has no saved checkpoint (user attr {CHECKPOINT_ATTR} in {folder}); "
                "retraining it instead")
    result, built = train(retrain_config(cfg, epochs), data.train_val(), seed)
    val_value = result.history[-1].metric(cfg.sweep.metric)
    return built.model, {"final_model": "retrain", "epochs": epochs, "seed": seed, "val_value_retrained": val_value}


def retrain_config(cfg: DictConfig, epochs: int) -> DictConfig:
    """The trial's resolved config cut at ``epochs`` (its best epoch) for a retrain that reproduces it:
    interpolations of max_epochs (a cosine schedule's length) were resolved already and keep the
    trial's value, and SWA keeps the trial's window (its default start is a share of max_epochs)."""
    if OmegaConf.select(cfg, "trainer.averaging", default="none") == "swa":
        cfg.trainer.swa_start_epoch = swa_start(OmegaConf.select(cfg, "trainer.swa_start_epoch"),
                                                cfg.trainer.max_epochs)
    cfg.trainer.max_epochs = epochs
    return cfg


def _download_state(folder: Path, artifact_id: str) -> dict[str, torch.Tensor]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        store = optuna.artifacts.FileSystemArtifactStore(folder)
        optuna.artifacts.download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        return torch.load(path, map_location="cpu", weights_only=True)


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
            _records.write(vault.study, CLAIMS, [*claims, {"opening": opening, "forced": forced, **_who()}])
        finally:
            storage.delete_study(lock_id)
    vault.label()


def open_vault(
    study: optuna.Study, exp: Experiment, data: PreparedData, storage: str, *, reopen: bool, say: Say
) -> dict[str, Any]:
    """Claims the vault, builds the best trial's final model and evaluates it on the test split once.

    Returns:
        The recorded result (also in the study's ``vault.result`` and audit list, and its note).

    Raises:
        VaultRefused: already opened and ``reopen`` is false, the split changed, or no trial completed.
        VaultBusy: another process claimed the opening first.
    """
    vault = check_seal(study, data, say)
    claims = vault.claims()
    if claims and not reopen:
        raise VaultRefused(f"{_recorded(vault)}. A second opening is refused: a test score looked at twice is no "
                           "longer an honest estimate; force it with vault.reopen=true (recorded in the audit list)")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise VaultRefused(f"study {study.study_name!r} has no completed trial: nothing to evaluate on the test split")
    opening, forced = len(claims) + 1, bool(claims)
    claim(vault, opening, forced)
    # The seed-robust winner's run where a selection was made (sweeps/study/_select.py), else the best trial.
    run, number, selection = vault_run(study)
    model, final = _final_model(run, exp, data, storage, exp.cfg.vault.final_model, say)
    X_test, y_test = unseal(data.sealed)
    device = next(model.parameters()).device
    X_test, y_test = X_test.to(device), y_test.to(device)
    test_loss, test_accuracy = evaluate(model, X_test, y_test)
    who = _who()
    result = {
        "opening": opening, "forced": forced, "trial": number, "metric": exp.cfg.sweep.metric,
        "val_value": run.value, "test": {"test_accuracy": test_accuracy, "test_loss": test_loss},
        "test_ci": _test_ci(model, X_test, y_test), **final,
        "fingerprint": vault.seal["fingerprint"], "n_test": data.sealed.n_samples,
        "n_trials_finished": count_trials(study)[0],
        "opened_at": who["at"], "host": who["host"], "pid": who["pid"],
    }
    if selection is not None:
        result["selection"] = selection
    _records.write(study, RESULT, result)
    vault.append_audit({"event": "opened", "opening": opening, "forced": forced, "trial": number,
                        "test": result["test"]})
    vault.label()
    _write_note(vault)
    return result


def _test_ci(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Percentile bootstrap 95% intervals of the test metrics, resampling test samples (seeded)."""
    losses, correct = per_sample(model, X, y)
    intervals = {name: list(bootstrap_mean_ci(values)) for name, values in
                 (("test_accuracy", correct.astype(float)), ("test_loss", losses))}
    return {**intervals, "confidence": 0.95, "method": "percentile bootstrap over test samples",
            "n_resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED}


def open_when_due(
    study: optuna.Study, exp: Experiment, data: PreparedData, storage: str, say: Say
) -> dict[str, Any] | None:
    """The driver's step after tuning: opens the vault once the study holds ``sweep.n_trials``
    finished trials and no other worker's trial is running; says what it did or why not."""
    vault, cfg = Vault(study), exp.cfg
    n_finished, _ = count_trials(study)
    opened = bool(vault.claims())
    if opened and not cfg.vault.reopen:
        say(_recorded(vault))
        return vault.result
    not_yet = "test vault not opened again" if opened else "test vault stays sealed"
    if n_finished < cfg.sweep.n_trials:
        say(f"{not_yet}: {n_finished} of {cfg.sweep.n_trials} trials finished")
        return None
    if exp.stage_of is not None:
        say(f"{not_yet}: staged experiment {exp.stage_of!r} opens it once, after its last stage, "
            "for the overall winner")
        return None
    if not cfg.vault.auto_open:
        say(f"{not_yet} (vault.auto_open=false); open it with: {_open_command(exp)}")
        return None
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        say(f"{not_yet}: {len(running)} trials still run in other workers; the last worker opens it, "
            f"or: {_open_command(exp)}")
        return None
    try:
        _ = study.best_trial  # one indexed query on RDB storages
    except ValueError:
        say(f"{not_yet}: no trial completed, so there is no model to evaluate")
        return None
    try:
        # The one opening is spent only if its results can then be written.
        check_destinations(cfg.sweep.export_dir, study.study_name, storage, cfg.sweep.artifact_dir)
    except ConfigError as exc:
        say(f"{not_yet}: {exc}; then rerun the same command")
        return None
    try:
        result = open_vault(study, exp, data, storage, reopen=cfg.vault.reopen, say=say)
    except Interrupted as exc:
        if vault.state() == "claimed":
            opening = vault.claims()[-1]["opening"]
            exc.message = (f"interrupted while opening the test vault: opening #{opening} of study "
                           f"{study.study_name!r} is claimed and holds no result; rerun the same command with "
                           "vault.reopen=true to open it (recorded as forced in the audit list)")
        raise
    except VaultBusy:
        say(f"another worker is opening the test vault; see: python -m sweeps.vault status {_overrides(exp)}")
        return None
    except VaultRefused:
        if cfg.vault.reopen or not vault.claims():
            raise
        # Another worker claimed it between our look and our claim: it is that worker's opening.
        say(f"another worker is opening the test vault; see: python -m sweeps.vault status {_overrides(exp)}")
        return None
    say(f"test vault opened: {describe_result(result)}")
    return result


def _overrides(exp: Experiment) -> str:
    name = exp.choices.get("experiment")
    return f"+experiment={name}" if name else "[your overrides]"


def _open_command(exp: Experiment) -> str:
    return f"python -m sweeps.vault open {_overrides(exp)}"


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


def _write_note(vault: Vault) -> None:
    """The vault's state as the study's note in optuna-dashboard."""
    from optuna_dashboard import save_note

    seal, result = vault.seal, vault.result
    lines = ["## Test vault", ""]
    if result:
        lines += [f"**Opened** (opening #{result['opening']}) at {result['opened_at']} by {literal(result['host'])} "
                  f"(pid {result['pid']}) for trial {result['trial']} ({result['metric']} {result['val_value']:.4f}).",
                  "", "| test metric | value |", "|---|---|"]
        ci = result.get("test_ci") or {}
        lines += [f"| {k} | {v:.4f}" + (f" (95% CI {ci[k][0]:.4f} to {ci[k][1]:.4f})" if k in ci else "") + " |"
                  for k, v in result["test"].items()]
        lines += ["", f"Final model: {result['final_model']}, {result['epochs']} epochs, seed {result['seed']}."]
    lines += ["", f"Test split: {seal['n_test']} samples, fingerprint `{seal['fingerprint'][:16]}`; "
                  f"{seal['duplicates']} shared with train/validation ({seal['dropped_duplicates']} dropped)."]
    if vault.forced:
        lines += ["", f"**FORCED** ({len(vault.forced)} times, vault.reopen=true): the vault was opened more than once "
                      "or tuning went on after an opening; the test score is no longer an honest estimate."]
    lines += ["", "### Audit", ""]
    lines += [f"- {e['at']} {e['event']}" + (" (forced)" if e.get("forced") else "")
              + f" by {literal(e['host'])} (pid {e['pid']})"
              for e in vault.audit]
    selection = note_section(vault.study)
    save_note(vault.study, "\n".join(lines) + "\n" + (f"\n{selection}" if selection else ""))
