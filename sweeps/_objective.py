"""One trial: sample, apply to a copy of the config, train with report/prune."""

from __future__ import annotations

import optuna
from omegaconf import OmegaConf

from practices.data import TrainVal
from practices.train import Callback, EpochStats, NonFiniteLossError
from sweeps._build import train, trial_seed
from sweeps._experiment import Experiment
from sweeps._preflight import PreflightFailed, preflight

__all__ = ["Objective"]

_MAX_REASON_CHARS = 300


class _Reporter(Callback):
    """Reports the validation metric every epoch and obeys the pruner."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.trial.report(stats.metric(self.metric), stats.epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_epoch", stats.epoch)
            raise optuna.TrialPruned(f"pruned at epoch {stats.epoch}")
        return False


class Objective:
    """The function ``study.optimize`` calls once per trial.

    It sees the training and validation splits only; the test split never reaches it.
    """

    def __init__(self, experiment: Experiment, data: TrainVal) -> None:
        self.experiment = experiment
        self.data = data

    def __call__(self, trial: optuna.Trial) -> float:
        exp = self.experiment
        params = exp.space.sample(trial)
        cfg = exp.config(params)
        seed = trial_seed(cfg.sweep.seed, trial.number)
        trial.set_user_attr("seed", seed)
        choices, values = exp.space.assignments(params)
        for group, option in choices.items():
            trial.set_user_attr(f"config.{group}", option)
        for key in values:
            trial.set_user_attr(f"config.{key}", OmegaConf.select(cfg, key))
        try:
            preflight(trial, exp, cfg, self.data)
            result, _ = train(cfg, self.data, seed, callbacks=[_Reporter(trial, cfg.sweep.metric)])
        except NonFiniteLossError as exc:
            trial.set_user_attr("fail_reason", "non-finite loss")
            trial.set_user_attr("fail_epoch", exc.epoch)
            raise
        except (optuna.TrialPruned, PreflightFailed):
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS])
            raise
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        return result.best_value
