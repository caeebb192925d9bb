"""The sweep: open the study, run the remaining trials, report progress, open the test vault,
export at the end."""

from __future__ import annotations

import time

import optuna

from sweeps._errors import ConfigError
from sweeps._exit import (
    EXIT_FAILURES,
    EXIT_NO_COMPLETED,
    EXIT_OK,
    EXIT_RECYCLE,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_UNFIXABLE,
)
from sweeps._interrupt import Interrupted, handling_signals
from sweeps._say import say
from sweeps.config._destinations import check_destinations
from sweeps.driver._export import export_study
from sweeps.driver._loop import best_trial, run_trials, storage_for
from sweeps.driver._workers import run_workers
from sweeps.experiment._data import PreparedData
from sweeps.experiment._experiment import Experiment
from sweeps.storage._url import artifact_dir, dashboard_command, mask
from sweeps.study import _select
from sweeps.study._study import open_study, strategy_notices
from sweeps.study._trials import FINISHED, end_reason, tally
from sweeps.trial._render import Renderer, shared_renderer
from sweeps.vault._open import open_when_due
from sweeps.vault._state import Vault, check_seal, refuse_tuning_after_opening

__all__ = [
    "EXIT_FAILURES",
    "EXIT_NO_COMPLETED",
    "EXIT_OK",
    "EXIT_RECYCLE",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_UNFIXABLE",
    "run",
    "run_trials",
    "storage_for",
]

def run(exp: Experiment, dataset: PreparedData) -> int:
    """Runs the experiment's study up to ``sweep.n_trials`` finished trials and exports it.

    Returns:
        The process exit code (sweeps/_exit.py): 0; 1 when the failure rate stopped the sweep; 3
        when a preflight failure that no searched key can fix did; 5 when trials ran and none
        completed; 130 / 143 on SIGINT / SIGTERM (after one line; the interrupted trial is queued
        again).

    Raises:
        ConfigError: a destination cannot be written, or the study does not match (exit 2).
    """
    # One plot renderer for the sweep's trial loops (search, then selection): the last trial's plots
    # are drawn while the test vault opens and the study is exported, and waited for at the end. The
    # process keeps it for its next sweep (a multirun's next combination, a staged experiment's stage).
    renderer = shared_renderer()
    with handling_signals():
        try:
            return _run(exp, dataset, renderer)
        except Interrupted as exc:
            say(exc.message)
            return exc.exit_code
        finally:
            renderer.drain()


def _run(exp: Experiment, dataset: PreparedData, renderer: Renderer) -> int:
    sweep = exp.cfg.sweep
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Before anything is written: a folder that cannot take the exports is a config error (exit 2).
    check_destinations(sweep.export_dir, exp.study_name, sweep.storage, sweep.artifact_dir)
    storage = storage_for(exp)
    study = open_study(exp, storage)
    vault = check_seal(study, dataset, say)
    counts = tally(study.get_trials(deepcopy=False))
    refuse_tuning_after_opening(vault, exp.cfg.vault.reopen, counts.finished, sweep.n_trials, say)
    say(f"study {study.study_name!r} in {mask(sweep.storage)}: {counts.finished} of {sweep.n_trials} trials finished")
    for line in strategy_notices(study, exp, counts.finished):
        say(line)
    artifacts = str(artifact_dir(sweep.storage, sweep.artifact_dir))
    say(f"watch it: {dashboard_command(sweep.storage, artifacts)}")
    code = EXIT_OK
    if counts.finished < sweep.n_trials:
        started = time.perf_counter()
        if sweep.n_workers == 1 and sweep.trials_per_worker is None:
            code = run_trials(exp, dataset, study, storage=storage, renderer=renderer)
        else:
            code = run_workers(exp, study)
        n_ran = tally(study.get_trials(deepcopy=False)).finished - counts.finished
        say(f"ran {n_ran} trials in {time.perf_counter() - started:.1f}s")
    completed = _summary(study, sweep.metric)
    selected = True
    if code == EXIT_OK:
        code, selected = _select_winner(exp, dataset, study, storage, renderer)
    if code == EXIT_OK and selected:
        open_when_due(study, exp, dataset, sweep.storage, say)
    try:
        exported = export_study(study, sweep.storage, sweep.export_dir)
    except OSError as exc:  # the folder was checked at the start; it broke during the run
        folder = f"{sweep.export_dir}/{study.study_name}"
        raise ConfigError(f"sweep.export_dir: cannot write to {folder!r} ({exc.strerror or type(exc).__name__}); the "
                          "study keeps its trials: make the folder writable, or set sweep.export_dir, and rerun the "
                          "same command") from None
    say(f"exported: {exported.trials_csv}" + (f", {exported.best_yaml}" if exported.best_yaml else "")
         + (f", {exported.test_result}" if exported.test_result else "")
         + (f", {exported.selection_csv}" if exported.selection_csv else ""))
    if exported.best_yaml:
        say(f"train the best config once: python -m sweeps.train {exported.best_yaml}")
    renderer.drain()  # every trial's plots are in the artifact store before the dashboard is named
    say(f"inspect: {dashboard_command(sweep.storage, artifacts)}")
    if code == EXIT_OK and not completed:
        return EXIT_NO_COMPLETED
    return code


def _select_winner(exp: Experiment, dataset: PreparedData, study: optuna.Study,
                   storage: optuna.storages.BaseStorage, renderer: Renderer) -> tuple[int, bool]:
    """Seed-robust selection (``_select.py``, docs/select.md) once due: the top configurations' extra
    seeds run as trials of the linked study, here or in workers.

    Returns:
        The exit code, and whether the vault may open (False while re-trainings are missing).
    """
    def opened() -> bool:  # read only when selection is otherwise due
        return bool(Vault(study).claims()) and not exp.cfg.vault.reopen

    linked = _select.prepare(exp, study, storage, say) if _select.due(exp, study, opened, say) else None
    if linked is None:
        return EXIT_OK, True
    if linked.pending:
        sweep = exp.cfg.sweep
        if sweep.n_workers == 1 and sweep.trials_per_worker is None:
            code = run_trials(linked.exp, dataset, linked.study, prefix="select ", storage=storage,
                              renderer=renderer)
        else:
            code = run_workers(linked.exp, linked.study, linked=True)
        if code != EXIT_OK:
            return code, False
    return EXIT_OK, _select.finish(exp, study, linked.study, say) is not None


def _summary(study: optuna.Study, metric: str) -> bool:
    """Prints why the trials ended and the best one; True if a trial completed."""
    reasons: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False, states=FINISHED):
        reason = end_reason(t)
        reasons[reason] = reasons.get(reason, 0) + 1
    line = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    best = best_trial(study)
    if best is None:
        say(f"{line}; no trial completed")
        return False
    say(f"{line}; best trial {best.number}: {metric}={best.value:.4f} with {best.params}")
    return True

