"""Opening the test vault: exactly once, for the winner (the seed-robust one of
sweeps/study/_select.py, else the best trial), at the end: claim, final model, one evaluation on the
sealed test split with a bootstrap interval, the record.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import torch
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from practices.averaging import swa_start
from practices.evaluation import per_sample
from practices.train import evaluate
from sweeps._errors import ConfigError
from sweeps._interrupt import Interrupted
from sweeps.config._destinations import check_destinations
from sweeps.experiment._build import build, train, trial_seed
from sweeps.experiment._seal import unseal
from sweeps.storage._url import artifact_dir
from sweeps.study import _records
from sweeps.study._result import result_value
from sweeps.study._select import vault_run
from sweeps.study._stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_mean_ci
from sweeps.study._trials import count_trials
from sweeps.vault._claim import claim
from sweeps.vault._note import write_note
from sweeps.vault._state import (
    RESULT,
    Say,
    Vault,
    VaultBusy,
    VaultRefused,
    check_seal,
    describe_result,
    describe_state,
    who,
)

if TYPE_CHECKING:
    from sweeps.experiment._data import PreparedData
    from sweeps.experiment._experiment import Experiment

__all__ = ["open_vault", "open_when_due", "retrain_config"]


CHECKPOINT_ATTR = "result.best_checkpoint"  # the key in the trial's result record (study/_result.py)


def _final_model(
    best: FrozenTrial, exp: Experiment, data: PreparedData, storage: str, mode: str, say: Say
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The best trial's final model: its checkpoint (``mode=checkpoint``, where saved) or a retrain."""
    cfg = exp.config(best.params)
    seed = best.user_attrs.get("seed", trial_seed(cfg.sweep.seed, best.number))
    epochs = int(result_value(best, "best_epoch") or cfg.trainer.max_epochs)
    if mode == "checkpoint":
        artifact_id = result_value(best, "best_checkpoint")
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
        raise VaultRefused(f"{describe_state(vault)}. A second opening is refused: a test score looked at twice is no "
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
    by = who()
    result = {
        "opening": opening, "forced": forced, "trial": number, "metric": exp.cfg.sweep.metric,
        "val_value": run.value, "test": {"test_accuracy": test_accuracy, "test_loss": test_loss},
        "test_ci": _test_ci(model, X_test, y_test), **final,
        "fingerprint": vault.seal["fingerprint"], "n_test": data.sealed.n_samples,
        "n_trials_finished": count_trials(study)[0],
        "opened_at": by["at"], "host": by["host"], "pid": by["pid"],
    }
    if selection is not None:
        result["selection"] = selection
    _records.write(study, RESULT, result)
    vault.append_audit({"event": "opened", "opening": opening, "forced": forced, "trial": number,
                        "test": result["test"]})
    vault.label()
    write_note(vault)
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
        say(describe_state(vault))
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
