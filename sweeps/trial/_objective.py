"""One trial: sample, apply to a copy of the config, train with report/prune."""

from __future__ import annotations

from typing import Any, Sequence

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from practices.data import TrainVal
from practices.monitor import Diverged, Monitor
from practices.train import Callback, EpochStats, NonFiniteLossError
from sweeps.experiment._build import judged_from_epoch, train, trial_seed
from sweeps.experiment._experiment import Experiment
from sweeps.study._result import RESULT_ATTR
from sweeps.trial._monitor import make_monitor
from sweeps.trial._preflight import PreflightFailed, preflight
from sweeps.trial._progress import EpochProgress
from sweeps.trial._render import Renderer
from sweeps.trial._report import report_trial

__all__ = ["Objective"]

_MAX_REASON_CHARS = 300
_COMPARED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


class _Reporter(Callback):
    """Reports the validation metric every epoch and obeys the pruner from ``prune_from_epoch`` on
    (an SWA trial's start: before it the pruner would judge weights that SWA has not averaged yet)."""

    def __init__(self, trial: optuna.Trial, metric: str, prune_from_epoch: int = 1) -> None:
        self.trial, self.metric, self.prune_from_epoch = trial, metric, prune_from_epoch

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.trial.report(stats.metric(self.metric), stats.epoch)
        if stats.epoch >= self.prune_from_epoch and self.trial.should_prune():
            self.trial.set_user_attr("pruned_epoch", stats.epoch)
            self.trial.set_user_attr("end_reason", "pruned")
            self.trial.set_user_attr("prune_reason", f"pruned at epoch {stats.epoch} by the "
                                     f"{type(self.trial.study.pruner).__name__}")
            raise optuna.TrialPruned(f"pruned at epoch {stats.epoch}")
        return False


def _duplicate_of(trial: optuna.Trial, params: dict[str, Any], known: Sequence[FrozenTrial] | None) -> int | None:
    """The number of an earlier running or finished trial with the same parameters, if any.

    Only a later trial defers to an earlier one: two workers that sample the same parameters both
    see the other running, and if each deferred, neither would be evaluated.

    Args:
        known: the study's trials as the trial loop read them just before this trial was asked (one
            read of the list per trial, not two); None reads them.
    """
    trials = trial.study.get_trials(deepcopy=False) if known is None else known
    for other in trials:
        if (other.number < trial.number and other.state in _COMPARED
                and other.user_attrs.get("end_reason") != "duplicate" and other.params == params):
            # A match in the loop's list is read again: the trial running then may have failed since (a
            # stale trial is failed and its retry, with the same parameters, asked right after the read).
            return other.number if known is None else _duplicate_of(trial, params, None)
    return None


def _record_exception(trial: optuna.Trial, exc: Exception) -> None:
    trial.set_user_attr("end_reason", "failed: exception")
    trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS])


class Objective:
    """The function ``study.optimize`` calls once per trial.

    It sees the training and validation splits only; the test split never reaches it.
    """

    def __init__(self, experiment: Experiment, data: TrainVal, renderer: Renderer | None = None) -> None:
        """
        Args:
            renderer: draws the reports' plots; one that the caller owns and closes (a sweep's, shared by
                its trial loops), or None for one of its own that :meth:`close` ends.
        """
        self.experiment = experiment
        self.data = data
        self._owns_renderer = renderer is None
        # The report's plots, drawn in another process while the next trial trains.
        self.renderer = renderer if renderer is not None else Renderer()
        self._preflight_note: str | None = None
        self._result: dict[str, Any] = {}
        # The study's trials as the trial loop last read them (``driver/_loop.py``), for the duplicate check.
        self.known_trials: Sequence[FrozenTrial] | None = None
        # The storage string of the studies this objective runs trials of, set by the trial loop: the
        # renderer process saves the reports' notes there. None: saved in this process.
        self.note_storage: str | None = None

    def close(self) -> None:
        """Waits until every finished trial's plots are in the artifact store (call when the trials end),
        unless the renderer is the caller's."""
        if self._owns_renderer:
            self.renderer.close()

    def __call__(self, trial: optuna.Trial) -> float:
        exp = self.experiment
        params = exp.space.sample(trial)
        attrs = trial.user_attrs  # one storage read for both questions below
        # A linked trial of seed-robust selection repeats its configuration with another seed on purpose.
        duplicate = None if "select.source" in attrs else _duplicate_of(trial, params, self.known_trials)
        if duplicate is not None:
            # Parallel workers can propose the same configuration; evaluating it twice wastes budget.
            trial.set_user_attr("end_reason", "duplicate")
            trial.set_user_attr("duplicate_of", duplicate)
            trial.set_user_attr("prune_reason", f"skipped: same parameters as trial {duplicate}")
            raise optuna.TrialPruned(f"same parameters as trial {duplicate}")
        cfg = exp.config(params)
        # A retried stale trial keeps the seed of the trial it replaces (copied in its user attrs).
        seed = attrs.get("seed", trial_seed(cfg.sweep.seed, trial.number))
        trial.set_user_attr("seed", seed)
        choices, values = exp.space.assignments(params)
        # One attribute, one storage write: {"schedule": "step", "schedule.factor": 0.3, ...}.
        trial.set_user_attr("config", {**choices, **{key: OmegaConf.select(cfg, key) for key in values}})
        monitor = make_monitor(cfg)
        self._preflight_note, self._result = None, {}
        error: BaseException | None = None
        try:
            return self._train(trial, cfg, seed, monitor)
        except BaseException as exc:
            error = exc
            raise
        finally:
            # A trial stopped by its preflight never trained: the preflight's own note stands. An
            # interrupted one is queued again and stops now (its retry writes the report).
            if monitor is not None and not isinstance(error, (PreflightFailed, KeyboardInterrupt)):
                report_trial(trial, monitor, cfg, error, result=self._result, renderer=self.renderer,
                             preflight_note=self._preflight_note, note_storage=self.note_storage)

    def _train(self, trial: optuna.Trial, cfg: DictConfig, seed: int, monitor: Monitor | None) -> float:
        try:
            # With the monitor on, the report saves the preflight's note with its own: one note write.
            _, self._preflight_note = preflight(trial, self.experiment, cfg, self.data, save=monitor is None)
        except PreflightFailed:
            trial.set_user_attr("end_reason", "failed: preflight")
            raise
        except Exception as exc:  # the model itself is broken: record it as any failing trial
            _record_exception(trial, exc)
            raise
        # The monitor goes first: it sees every epoch, also the one the pruner stops at.
        callbacks = [monitor] if monitor is not None else []
        if self.experiment.cfg.sweep.n_workers == 1:  # workers sharing one terminal would overwrite each other
            # A status line on a terminal; in a log the trial's one result line is enough (max_lines=0).
            callbacks.append(EpochProgress(f"trial {trial.number}", cfg.trainer.max_epochs, cfg.sweep.metric))
        try:
            reporter = _Reporter(trial, cfg.sweep.metric, judged_from_epoch(cfg))
            result, built = train(cfg, self.data, seed, callbacks=[*callbacks, reporter])
        except (Diverged, NonFiniteLossError) as exc:
            if monitor is None:
                trial.set_user_attr("end_reason", "failed: non-finite")
                trial.set_user_attr("fail_reason", "non-finite loss")
                trial.set_user_attr("fail_epoch", exc.epoch)
                raise
            diagnosis = exc.diagnosis if isinstance(exc, Diverged) else monitor.record_non_finite(exc)
            reason = f"diverged: {diagnosis.summary}"
            trial.set_user_attr("prune_reason", reason[:_MAX_REASON_CHARS])
            trial.set_user_attr("pruned_epoch", exc.epoch)
            trial.set_user_attr("end_reason", "pruned: diverged")
            raise optuna.TrialPruned(reason) from None
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            _record_exception(trial, exc)
            raise
        # One attribute, one storage write; with the monitor on, its report adds to it and writes it.
        self._result = {"device": str(built.device), "best_epoch": result.best_epoch, "epochs_run": result.epochs_run}
        if monitor is None:
            trial.set_user_attr(RESULT_ATTR, self._result)
        trial.set_user_attr("end_reason", "completed")
        return result.best_value
