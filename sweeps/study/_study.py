"""Study creation, loading and the metadata a study carries."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna

from sweeps._errors import ConfigError
from sweeps.config._schema import run_keys
from sweeps.experiment._build import derive_seed
from sweeps.experiment._experiment import Experiment
from sweeps.storage._url import mask
from sweeps.study import _records
from sweeps.study._trials import FINISHED, count_trials, end_reason, retried_numbers

__all__ = [
    "FINISHED", "count_trials", "end_reason", "retried_numbers", "config_fingerprint", "make_sampler", "make_pruner",
    "median_warmup_epochs", "open_study", "recorded_experiment", "strategy_notices", "versions", "git_commit",
]


AVERAGING_KEYS = ("trainer.averaging", "trainer.ema_decay", "trainer.swa_start_epoch")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _fixed_values(record: dict[str, Any]) -> dict[str, Any]:
    flat = _flatten({"base": record["base"], "options": record["options"]})
    run = {f"base.{key}" for key in run_keys()}  # they may differ on resume (sweeps/config/_schema.py, RUN)
    fixed = {k: v for k, v in flat.items() if k not in run}
    # Weight averaging off and not searched: its keys change nothing, and a study made before they
    # existed (without them) resumes.
    searched = any(k.startswith("base.search.trainer.averaging") for k in flat)
    if fixed.get("base.trainer.averaging", "none") == "none" and not searched:
        for key in AVERAGING_KEYS:
            fixed.pop(f"base.{key}", None)
    return fixed


def config_fingerprint(record: dict[str, Any]) -> str:
    """A hash of everything that decides what a trial computes, run controls left out."""
    return hashlib.sha256(json.dumps(_fixed_values(record), sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sweeps", "torch", "optuna", "hydra-core", "omegaconf", "numpy", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The commit of the sweeps checkout, with ``+dirty`` for local changes; None for an installed wheel
    (even one in a virtual environment inside some other git repository) or where git is missing."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=5)
        if head.returncode != 0 or Path(head.stdout.split("\n")[0]).resolve() != root:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.split("\n")[1].strip() + ("+dirty" if dirty.stdout.strip() else "")


def make_sampler(name: str, seed: int, tpe_startup_trials: int = 8) -> optuna.samplers.BaseSampler:
    """The sampler ``sweep.sampler`` names; ``tpe_startup_trials`` (``sweep.tpe_startup_trials``) is how many
    trials TPE samples at random before it models the finished ones."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    # group=True samples conditional parameters jointly within each option's subspace.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=tpe_startup_trials)


def make_pruner(name: str, max_epochs: int, warmup_epochs: int | None = None) -> optuna.pruners.BasePruner:
    """The pruner ``sweep.pruner`` names; ``warmup_epochs`` (``sweep.pruner_warmup_epochs``) is the median
    pruner's warm-up, None for :func:`median_warmup_epochs`."""
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    warmup = median_warmup_epochs(max_epochs) if warmup_epochs is None else warmup_epochs
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


def median_warmup_epochs(max_epochs: int) -> int:
    """Epochs the median pruner lets every trial run before it compares: a quarter of max_epochs.

    A fixed few epochs stopped most 40-epoch MNIST-1D trials at epoch 3 or 4, before a step schedule's
    drop or weight averaging showed what they reach (docs/benchmarks.md, section 4); a quarter keeps
    the quickstart's 12-epoch trials at 3.
    """
    return min(max(1, max_epochs // 4), max_epochs - 1)


def open_study(exp: Experiment, storage: optuna.storages.BaseStorage, worker: int = 0) -> optuna.Study:
    """Creates the study or loads it, checking it still matches the experiment.

    Raises:
        ConfigError: the search space, the fixed config or the direction changed since creation.
    """
    sweep = exp.cfg.sweep
    name = exp.study_name
    study = optuna.create_study(storage=storage, study_name=name, direction=sweep.direction, load_if_exists=True)
    _check_direction(study, exp)
    record = exp.record()
    attrs = study.user_attrs
    if "space_fingerprint" not in attrs:
        _name_metric(study, sweep.metric)
        # The records go to system attrs (sweeps/study/_records.py); user attrs keep short labels, which
        # `optuna studies` prints in one row and the dashboard lists.
        _records.write(study, "experiment", record)
        _records.write(study, "versions", versions())
        study.set_user_attr("experiment", exp.choices.get("experiment") or name)
        study.set_user_attr("sampler", sweep.sampler)
        study.set_user_attr("pruner", sweep.pruner)
        study.set_user_attr("config_fingerprint", config_fingerprint(record))
        study.set_user_attr("git_commit", git_commit())
        # Written last: another worker that sees it can rely on the attributes above.
        study.set_user_attr("space_fingerprint", exp.space.fingerprint())
    else:
        _check_unchanged(study, exp, record)
        if study.metric_names is None:  # a study created before sweeps named its objective
            _name_metric(study, sweep.metric)
        _scrub_password(study)
    # Resumed runs and parallel workers each get their own sampler seed, so that none replays
    # another's random startup samples.
    n_trials = len(study.get_trials(deepcopy=False))
    seed = derive_seed(sweep.seed, n_trials, worker)
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(sweep.sampler, seed, sweep.tpe_startup_trials),
        pruner=make_pruner(sweep.pruner, exp.cfg.trainer.max_epochs, sweep.pruner_warmup_epochs),
    )


def recorded_experiment(study: optuna.Study) -> dict[str, Any] | None:
    """The experiment recorded when ``study`` was created (base config, choices, option nodes), or
    None for a study that sweeps did not create."""
    return _records.read(study, "experiment", legacy=dict)


def strategy_notices(study: optuna.Study, exp: Experiment, n_finished: int) -> list[str]:
    """One line for each of ``sweep.sampler`` and ``sweep.pruner`` that differs from the one the study
    last ran with. Both may change on resume (they decide how the next trials are chosen, not what a
    trial computes); the new one applies to the trials still to run, and the study's user attr
    follows it. A finished study runs none, so the change would do nothing: the line says so."""
    sweep, name = exp.cfg.sweep, study.study_name
    recorded = ((recorded_experiment(study) or {}).get("base") or {}).get("sweep") or {}
    lines = []
    for key in ("sampler", "pruner"):
        now, before = sweep[key], study.user_attrs.get(key, recorded.get(key))
        if before is None or before == now:
            continue
        if n_finished >= sweep.n_trials:
            lines.append(f"note: sweep.{key}={now} is ignored: study {name!r} ran with {key} {before} and already "
                         f"holds its {sweep.n_trials} trials, so no trial runs; raise sweep.n_trials to run more with "
                         f"{now}, or start a new study with sweep.study_name={name}-2")
            continue
        lines.append(f"note: sweep.{key} changed from {before} to {now}: the {n_finished} finished trials ran with "
                     f"{before}, the remaining {sweep.n_trials - n_finished} use {now}")
        study.set_user_attr(key, now)
    return lines


def _scrub_password(study: optuna.Study) -> None:
    """Masks the storage password in the ``experiment`` attribute of a study recorded before it was masked."""
    record = study.user_attrs.get("experiment")
    if not isinstance(record, dict):  # recorded in system attrs, masked from the start
        return
    storage = (record.get("base") or {}).get("sweep", {}).get("storage")
    if isinstance(storage, str) and mask(storage) != storage:
        record["base"]["sweep"]["storage"] = mask(storage)
        study.set_user_attr("experiment", record)


def _name_metric(study: optuna.Study, metric: str) -> None:
    """Names the objective, so that optuna-dashboard (and trials_dataframe) show ``val_accuracy``,
    not "Objective 0"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric])


def _fresh(name: str) -> str:
    return (f"start a new study with sweep.study_name={name}-2, or delete this one with "
            f"`optuna delete-study --study-name {name} --storage STORAGE`")


def _check_direction(study: optuna.Study, exp: Experiment) -> None:
    """A study keeps the direction it was created with (older ones: maximize unless set, whatever the metric)."""
    sweep = exp.cfg.sweep
    if study.direction.name.lower() != sweep.direction:
        raise ConfigError(f"sweep.direction is {sweep.direction!r} (sweep.metric={sweep.metric}) but study "
                          f"{study.study_name!r} was created to {study.direction.name.lower()}; "
                          f"{_fresh(study.study_name)}")


def _check_unchanged(study: optuna.Study, exp: Experiment, record: dict[str, Any]) -> None:
    name, attrs = study.study_name, study.user_attrs
    fresh = _fresh(name)
    if attrs["space_fingerprint"] != exp.space.fingerprint():
        raise ConfigError(f"the search space changed since study {name!r} was created (fingerprint "
                          f"{attrs['space_fingerprint']} -> {exp.space.fingerprint()}); {fresh}")
    if attrs.get("config_fingerprint") != config_fingerprint(record):
        old, new = _fixed_values(recorded_experiment(study)), _fixed_values(record)
        changed = sorted(k.split(".", 1)[1] for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ConfigError(f"the fixed config changed since study {name!r} was created ({', '.join(changed[:5])}); "
                          f"trials would not be comparable; {fresh}")
