"""A trial's training report in optuna-dashboard: a markdown note, plots and checkpoints as artifacts.

Written at the end of every trial that ran with the monitor, completed, pruned or failed. Curves go
to artifacts (Optuna's file-system artifact store, beside the storage by default); the trial's user
attributes get only a handful of labels and ids: the diagnoses, the early-stop epoch and the
checkpoints' artifact ids go into the trial's result record with what training ended with, one
attribute written once (``sweeps/study/_result.py``).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
import torch
from omegaconf import DictConfig
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from practices.monitor import Diagnosis, Monitor
from sweeps._markdown import literal
from sweeps.config._schema import monitor_config
from sweeps.storage._url import artifact_dir, mask, mask_text
from sweeps.study._result import RESULT_ATTR
from sweeps.trial._plots import PLACEHOLDER_PNG, draw
from sweeps.trial._render import Renderer

__all__ = ["artifact_store", "artifact_url", "plot_data", "preflight_rows", "remove_scratch", "render_note",
           "report_trial", "store_folder"]

log = logging.getLogger("sweeps")
_MAX_ATTR_CHARS = 300
CHECKPOINT_MIMETYPE = "application/octet-stream"


def store_folder(cfg: DictConfig) -> Path:
    """The folder of the study's artifact store (``sweep.artifact_dir``, else beside the storage)."""
    folder = Path(artifact_dir(cfg.sweep.storage, cfg.sweep.get("artifact_dir")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_store(cfg: DictConfig) -> FileSystemArtifactStore:
    """The study's file-system artifact store (``sweep.artifact_dir``, else beside the storage)."""
    return FileSystemArtifactStore(store_folder(cfg))


def report_trial(trial: optuna.Trial, monitor: Monitor, cfg: DictConfig, error: BaseException | None, *,
                 result: Mapping[str, Any] | None = None, renderer: Renderer | None = None,
                 preflight_note: str | None = None, note_storage: str | None = None) -> None:
    """Writes the trial's note, plots, checkpoints and result record. Never raises: a report that
    cannot be written must not turn a pruned or completed trial into a failed one.

    Args:
        result: what training ended with (device, best and run epochs), written in the trial's result
            record with the diagnoses and the checkpoints' ids: one storage write for them all.
        renderer: draws the plots in its own process after this returns (``sweeps.trial._render``); None
            draws them here, before returning.
        preflight_note: the note the trial's preflight wrote (kept as the report's preflight section).
        note_storage: the storage string of the trial's study: with a renderer, its process saves the
            note there once the plots are drawn (off the trial's path); None saves it here.
    """
    record = dict(result or {})
    try:
        _report(trial, monitor, cfg, error, renderer, preflight_note, record, note_storage)
        return
    except Exception as exc:  # disk full, a plot that cannot be drawn: log it, keep the trial's state
        reason = _masked(exc, cfg)
        log.warning("trial %d: the training report could not be written: %s", trial.number, reason)
    try:
        if record and RESULT_ATTR not in trial.user_attrs:  # what training ended with still counts
            trial.set_user_attr(RESULT_ATTR, record)
        trial.set_user_attr("report_error", reason)
    except Exception:  # the storage itself is gone; nothing more to record
        pass


def _masked(exc: BaseException | str, cfg: DictConfig) -> str:
    storage = str(cfg.sweep.storage)
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return mask_text(text.replace(storage, mask(storage)))[:_MAX_ATTR_CHARS]


def artifact_url(trial: optuna.Trial) -> str:
    """Where optuna-dashboard serves the trial's artifacts: /artifacts/<study id>/<trial id>/ (the
    storage's ids, as Optuna's upload_artifact keys them), found through the storage's public API."""
    storage = trial.storage
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    return f"/artifacts/{study_id}/{storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)}/"


def _report(trial: optuna.Trial, monitor: Monitor, cfg: DictConfig, error: BaseException | None,
            renderer: Renderer | None, preflight_note: str | None, record: dict[str, Any],
            note_storage: str | None) -> None:
    settings = monitor_config(cfg)
    diagnoses = monitor.diagnose()
    record["diagnoses"] = ",".join(d.code for d in diagnoses) or "none"
    if monitor.stopped_epoch is not None:
        record["stopped_early_epoch"] = monitor.stopped_epoch
    store = artifact_store(cfg)
    artifacts: list[tuple[str, str]] = []
    plots = plot_data(monitor, settings.thresholds) if settings.plots else {}
    folder = _scratch()
    try:
        for kind, state in (("best", monitor.best_state), ("last", monitor.last_state)):
            if state is None:
                continue
            path = folder / f"{kind}_checkpoint.pt"
            torch.save(state, path)  # the best epoch's weights were kept in memory: one write, here
            # Python's mimetypes guesses .pt as a SNES page table; a checkpoint is opaque bytes.
            artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                          mimetype=CHECKPOINT_MIMETYPE)
            record[f"{kind}_checkpoint"] = artifact_id
            artifacts.append((path.name, artifact_id))
        jobs = []
        for name, data in plots.items():
            path = folder / name
            if renderer is None:
                draw(name, data, path)
            else:  # the artifact exists now; the renderer replaces its content once drawn
                path.write_bytes(PLACEHOLDER_PNG)
            artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
            artifacts.append((name, artifact_id))
            jobs.append({"name": name, "artifact_id": artifact_id, "data": data})
    finally:
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
    trial.set_user_attr(RESULT_ATTR, record)  # one storage write for all of it
    url = artifact_url(trial)
    # The preflight wrote its own note before training (checks, cache origin, the parameter concerned):
    # the report keeps it as its preflight section.
    kept = preflight_note if preflight_note and preflight_note.startswith(_PREFLIGHT_HEADING) else None
    note = render_note(trial.number, monitor, diagnoses, _outcome(trial, monitor, error), trial.user_attrs,
                       [(name, url + artifact_id) for name, artifact_id in artifacts], kept)
    # optuna-dashboard reads every study attribute twice per note: in the renderer, off the trial's path.
    deferred = renderer is not None and note_storage is not None
    if not deferred:
        save_note(trial, note)
    if renderer is not None:
        job_note = {"storage": note_storage, "study": trial.study.study_name, "trial": trial.number, "body": note}
        renderer.submit(str(store_folder(cfg)), jobs, _on_render_failure(trial, note, cfg),
                        note=job_note if deferred else None)
    if settings.print_diagnoses:
        for d in diagnoses:
            print(f"  trial {trial.number}: {d.code}: {d.summary}", flush=True)


_SCRATCH: dict[tuple[int, int], Path] = {}


def _scratch() -> Path:
    """An empty folder of this process and thread for files on their way into the artifact store (whose
    upload takes a path, and names the artifact after the file). Made once: a folder made and removed
    for every trial cost 1-3 ms of each trial on an idle machine here, up to ~90 ms on a busy one."""
    key = (os.getpid(), threading.get_ident())  # a forked worker or another thread gets its own
    folder = _SCRATCH.get(key)
    if folder is None or not folder.is_dir():
        folder = Path(tempfile.mkdtemp(prefix="sweeps-report-"))
        if not _SCRATCH:
            atexit.register(remove_scratch)
        _SCRATCH[key] = folder
    return folder


def remove_scratch() -> None:
    """Removes this process's scratch folders: at exit, and at the end of a worker process (which
    multiprocessing ends without running exit handlers)."""
    pid = os.getpid()
    for key in [key for key in _SCRATCH if key[0] == pid]:
        shutil.rmtree(_SCRATCH.pop(key), ignore_errors=True)


def _on_render_failure(trial: optuna.Trial, note: str, cfg: DictConfig) -> Callable[[str], None]:
    def report(reason: str) -> None:
        reason = _masked(reason, cfg)
        log.warning("trial %d: its plots could not be drawn: %s", trial.number, reason)
        try:  # the note is a study attribute: still writable after the trial ended; saved here if the renderer did not
            # A plotting error may quote user text over several lines: literal text, never Markdown.
            save_note(trial, note + f"\n_The plots could not be drawn:_ {literal(reason)}\n")
        except Exception as exc:  # the storage is gone: the warning above is all there is
            log.warning("trial %d: its note could not be updated: %s", trial.number, _masked(exc, cfg))

    return report


_PREFLIGHT_HEADING = "## Preflight"


def _outcome(trial: optuna.Trial, monitor: Monitor, error: BaseException | None) -> str:
    attrs = trial.user_attrs
    if error is None:
        stopped = f", stopped early at epoch {monitor.stopped_epoch}" if monitor.stopped_epoch else ""
        return f"**complete** after {len(monitor.epochs)} epochs{stopped}"
    if isinstance(error, optuna.TrialPruned):
        return f"**pruned**: {literal(attrs.get('prune_reason', error))}"
    return f"**failed**: {literal(attrs.get('fail_reason', f'{type(error).__name__}: {error}'))}"


def preflight_rows(user_attrs: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """``(check, passed, value, threshold)`` for each check in the ``preflight`` user attribute
    (studies written before it kept ``preflight.<check>.passed``, ``.value`` and ``.threshold``)."""
    checks: dict[str, dict[str, Any]] = {}
    record = user_attrs.get("preflight")
    if isinstance(record, dict):
        checks.update({name: dict(c) for name, c in record.items() if isinstance(c, dict)})
    for key, value in user_attrs.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "preflight" and parts[2] in ("passed", "value", "threshold"):
            checks.setdefault(parts[1], {})[parts[2]] = value
    return [(name, c.get("passed"), c.get("value"), c.get("threshold")) for name, c in sorted(checks.items())]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def render_note(
    number: int,
    monitor: Monitor,
    diagnoses: list[Diagnosis],
    outcome: str,
    user_attrs: Mapping[str, Any],
    artifacts: list[tuple[str, str]],
    preflight_note: str | None = None,
) -> str:
    """The trial's note (markdown): outcome, preflight, diagnoses with numbers and advice, best
    epoch, per-layer medians and links to the artifacts."""
    lines = [f"## Training report, trial {number}", "", outcome, ""]
    if monitor.best_epoch is not None:
        lines += [f"Best epoch: **{monitor.best_epoch}** ({monitor.metric} = {monitor.best_value:.4f}); "
                  f"initial training loss {_number(monitor.initial_loss)}.", ""]
    rows = preflight_rows(user_attrs)
    if preflight_note:
        lines += ["#" + preflight_note.strip(), ""]
    elif rows:
        lines += ["### Preflight", "", "| check | result | value | threshold |", "|---|---|---|---|"]
        lines += [f"| {name} | {'passed' if passed else 'FAILED' if passed is not None else ''} | {_number(value)} "
                  f"| {_number(threshold)} |" for name, passed, value, threshold in rows]
        lines.append("")
    lines += ["### Diagnoses", ""]
    if not diagnoses:
        lines.append("No problems found.")
    for d in diagnoses:
        at = f", epoch {d.epoch}" if d.epoch is not None else ""
        # Summaries and advice name the user's layers: literal text, never Markdown.
        lines.append(f"- **{d.code}** ({d.severity}{at}): {literal(d.summary)}. *Advice:* {literal(d.advice)}")
    lines.append("")
    stats = monitor.layer_stats()
    if stats:
        lines += ["### Layers (medians over sampled steps)", "",
                  "| layer | gradient norm | update ratio | dead units | saturated |", "|---|---|---|---|---|"]
        lines += [f"| {literal(s.layer, in_table=True)} | {_number(s.grad_norm)} | {_number(s.update_ratio)} "
                  f"| {_number(s.dead_fraction)} | {_number(s.saturated_fraction)} |" for s in stats]
        lines.append("")
    if artifacts:
        lines += ["### Artifacts", ""]
        # Names and URLs are ours (fixed file names, storage ids), never the user's.
        lines += [f"- [{name}]({url})" for name, url in artifacts if not name.endswith(".png")]
        for name, url in artifacts:
            if name.endswith(".png"):
                lines += ["", f"![{name}]({url})"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ plots


def plot_data(monitor: Monitor, thresholds: Any) -> dict[str, dict[str, Any]]:
    """The numbers each plot of ``sweeps.trial._plots`` is drawn from (plain lists: they travel as JSON to
    the renderer process), by file name; plots without data are left out."""
    plots: dict[str, dict[str, Any]] = {}
    epochs = monitor.epochs
    if epochs:
        plots["loss_curve.png"] = {
            "epochs": [s.epoch for s in epochs], "train_loss": [s.train_loss for s in epochs],
            "val_loss": [s.val_loss for s in epochs], "metric": monitor.metric,
            "metric_values": [s.metric(monitor.metric) for s in epochs], "lr": [s.lr for s in epochs],
            "best_epoch": monitor.best_epoch,
        }
    if any(monitor.update_ratios.values()):
        plots["update_ratio.png"] = {"steps": list(monitor.sampled_steps), "ratios": dict(monitor.update_ratios),
                                     "low": thresholds.update_ratio_low, "high": thresholds.update_ratio_high}
    if monitor.first_layer_filters is not None:
        plots["first_layer_filters.png"] = {"filters": monitor.first_layer_filters.float().mean(dim=1).tolist()}
    return plots
