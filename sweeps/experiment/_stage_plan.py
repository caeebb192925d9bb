"""Staged sweeps (PRACTICES.md section 4): SGD with momentum first, then Adam seeded from its result.

An experiment's ``stages:`` list declares them. Each stage is its own Optuna study,
``<name>.<stage>``, in the same storage; a later stage keeps the earlier stages' best
non-optimizer settings fixed (``carry: fixed``) or searches narrowly around them
(``carry: narrow``), and its first trial is enqueued from the previous best with a translated
learning rate. The stages' best trials are compared on validation, and the test vault opens once,
for the overall winner.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import optuna
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sweeps.config._compose import Composed, compose_options
from sweeps.config._space import flatten_search
from sweeps.config._stage_spec import STAGE_KEYS, Stage, parse_stages
from sweeps.experiment._experiment import Experiment, compile_experiment

__all__ = [
    "STAGE_KEYS", "Stage", "narrowed", "parse_stages", "stage_experiment", "stage_row", "stage_table", "translated_lr",
]

def translated_lr(best: Mapping[str, Any], lr_scale: float, low: float, high: float) -> float:
    """The previous stage's best learning rate times ``lr_scale``, clipped into [low, high].

    SGD with momentum beta takes steps of about ``lr / (1 - beta)`` times the gradient, Adam of
    about ``lr`` per parameter whatever the gradient's scale; no exact mapping exists, so the
    experiment states the scale (``lr_scale``) and the stage searches around it.
    """
    return float(min(max(best["optimizer.lr"] * lr_scale, low), high))


def narrowed(spec: Mapping[str, Any], value: Any) -> dict[str, Any] | None:
    """A search spec around ``value``: a factor of 2 either way on a log scale, a tenth of the
    range either way on a linear one, one step for ints; None where the key stays fixed."""
    kind = spec.get("type")
    if kind not in ("float", "int"):
        return None
    low, high = spec["low"], spec["high"]
    if spec.get("log"):
        new_low, new_high = max(low, value / 2), min(high, value * 2)
    else:
        width = (high - low) / 10 if kind == "float" else max(1, spec.get("step") or 1)
        new_low, new_high = max(low, value - width), min(high, value + width)
    if kind == "int":
        new_low, new_high = int(new_low), int(new_high)
    if new_low >= new_high:
        return None
    return {**spec, "low": new_low, "high": new_high}


def stage_experiment(
    base: Experiment, stage: Stage, study_name: str, previous: tuple[Experiment, optuna.trial.FrozenTrial] | None
) -> Experiment:
    """The experiment of one stage: the base config with the stage's optimizer, its search, and the
    previous stage's best non-optimizer settings fixed (or narrowed around)."""
    cfg = copy.deepcopy(base.cfg)
    OmegaConf.set_struct(cfg, False)
    choices = dict(base.choices)
    composed = Composed(cfg, choices, list(base.overrides))
    if stage.optimizer and stage.optimizer != choices.get("optimizer"):
        cfg.optimizer = compose_options(composed, "optimizer", [stage.optimizer])[stage.optimizer]
        choices["optimizer"] = stage.optimizer
    search = flatten_search(stage.search)
    if previous is not None:
        search.update(_carry(cfg, choices, stage, *previous))
    cfg.search = OmegaConf.create(search)
    cfg.sweep.study_name = study_name
    cfg.sweep.n_trials = stage.n_trials
    OmegaConf.set_struct(cfg, True)
    exp = compile_experiment(Composed(cfg, choices, list(base.overrides)))
    exp.stage_of = base.study_name  # the vault opens once, for the overall winner of all stages
    return exp


def _carry(
    cfg: DictConfig, choices: dict[str, str], stage: Stage, prev: Experiment, best: optuna.trial.FrozenTrial
) -> dict[str, Any]:
    """Applies the previous best's non-optimizer settings to ``cfg``; returns narrowed specs."""
    prev_choices, prev_values = prev.space.assignments(best.params)
    for group, option in prev_choices.items():
        if group != "optimizer":
            cfg[group] = copy.deepcopy(prev.options[group][option])
            choices[group] = option
    prev_specs = flatten_search(OmegaConf.to_container(prev.cfg.search, resolve=False) or {})
    extra: dict[str, Any] = {}
    for key, value in prev_values.items():
        if key.startswith("optimizer."):
            continue
        spec = prev_specs.get(key)
        around = narrowed(spec, value) if stage.carry == "narrow" and isinstance(spec, Mapping) else None
        if around is not None:
            extra[key] = around
        OmegaConf.update(cfg, key, value, merge=False)
    return extra


def stage_table(rows: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    """Writes the stage comparison to ``path`` (CSV) and returns it."""
    table = pd.DataFrame(rows, columns=["stage", "study", "best_value", "best_trial", "n_trials", "n_pruned",
                                        "n_failed", "wall_seconds"])
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def stage_row(stage: Stage, study: optuna.Study) -> dict[str, Any]:
    """One line of the stage comparison, read from the stage's study."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    starts = [t.datetime_start for t in finished if t.datetime_start]
    ends = [t.datetime_complete for t in finished if t.datetime_complete]
    try:
        best = study.best_trial
    except ValueError:
        best = None
    return {
        "stage": stage.name,
        "study": study.study_name,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "n_trials": len(finished),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in finished),
        "n_failed": sum(t.state == optuna.trial.TrialState.FAIL for t in finished),
        "wall_seconds": (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
    }
