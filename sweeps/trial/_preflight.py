"""The preflight of a trial: run the checks of practices.checks before training, once per architecture.

Every check depends only on what the model is (``model.*``, less ``preflight.ignore``), the data, the
loss and the ``preflight`` config; the last three are fixed for a study. So the results are cached in
the study's user attributes under a fingerprint of those values: other workers and resumed runs
reuse them, and a sweep over one architecture runs the checks once.

A failed check fails the trial (``fail_reason`` names the check, the number and the advice). When no
searched key can change the check's inputs, no later trial can pass it either: the trial is marked
``preflight.unfixable`` and :class:`StopOnUnfixable` stops the sweep (exit code 3).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any, Sequence

import optuna
import torch
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from practices.checks import CheckResult, gradient_check, init_loss_check, overfit_check
from practices.data import TrainVal
from sweeps._markdown import literal
from sweeps.config._schema import preflight_config
from sweeps.experiment._build import make_model, n_threads
from sweeps.experiment._experiment import Experiment
from sweeps.study._records import PREFLIGHT_CACHE

__all__ = ["CHECKS", "EXIT_UNFIXABLE", "PreflightFailed", "StopOnUnfixable", "fingerprint", "preflight", "render",
           "run_checks", "searched_inputs"]

CHECKS = ("gradient", "init_loss", "overfit")
EXIT_UNFIXABLE = 3
# Config prefixes every check reads besides what is fixed for a study (data, split, preflight, loss).
_INPUTS = ("model",)
_CACHE_ATTR = PREFLIGHT_CACHE
UNFIXABLE_ATTR = "preflight.unfixable"


class PreflightFailed(Exception):
    """A check failed; ``unfixable`` when no searched key can change its outcome."""

    def __init__(self, result: CheckResult, unfixable: bool) -> None:
        super().__init__(reason(result))
        self.result, self.unfixable = result, unfixable


def reason(result: CheckResult) -> str:
    """The ``fail_reason`` of a trial that failed ``result``."""
    return f"preflight: {result.summary()}; {result.advice}"


def _model_factory(cfg: DictConfig, data: TrainVal):
    def make() -> torch.nn.Module:
        return make_model(cfg, data.in_shape, data.n_classes)
    return make


def run_checks(cfg: DictConfig, data: TrainVal) -> list[CheckResult]:
    """Runs the enabled checks for the resolved ``cfg`` on ``data``'s training split, on the CPU.

    Models are built with the checks' own seed (``preflight.seed``), and the global torch random
    state is restored afterwards, so a trial trains exactly as it would without the preflight.
    """
    pf = preflight_config(cfg)
    make = _model_factory(cfg, data)
    X, y = data.X_train.cpu(), data.y_train.cpu()
    results = []
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(n_threads(cfg, make()))  # as the trial will train (sweeps.experiment._threads)
        if pf.gradient.enabled:
            torch.manual_seed(pf.seed)
            g = pf.gradient
            results.append(gradient_check(make(), X, y, n_samples=g.n_samples, n_entries=g.n_entries, step=g.step,
                                          threshold=g.threshold, seed=pf.seed))
        if pf.init_loss.enabled:
            i = pf.init_loss
            results.append(init_loss_check(make, X, y, n_classes=data.n_classes, n_inits=i.n_inits,
                                           n_samples=i.n_samples, tolerance=i.tolerance, seed=pf.seed))
        if pf.overfit.enabled:
            torch.manual_seed(pf.seed)
            o = pf.overfit
            results.append(overfit_check(make(), X, y, n_samples=o.n_samples, max_steps=o.max_steps, lr=o.lr,
                                         loss_threshold=o.loss_threshold, seed=pf.seed))
    return results


def fingerprint(cfg: DictConfig, data: TrainVal, pf: DictConfig | None = None) -> str:
    """A hash of every value the checks depend on: the model node (less ``preflight.ignore``), the
    preflight config and the data's shape. Equal fingerprints give equal check results."""
    pf = preflight_config(cfg) if pf is None else pf
    model = OmegaConf.to_container(cfg.model, resolve=True)
    for key in pf.ignore:
        model.pop(key.split(".", 1)[1], None)
    canon = {"model": model, "preflight": OmegaConf.to_container(pf, resolve=True),
             "in_shape": list(data.in_shape), "n_classes": data.n_classes, "n_train": len(data.y_train)}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()[:16]


def searched_inputs(exp: Experiment, cfg: DictConfig, pf: DictConfig | None = None) -> list[str]:
    """The searched keys (or groups) that can change what the checks see."""
    ignore = set((preflight_config(cfg) if pf is None else pf).ignore)
    return [key for key in exp.space.searched_keys
            if key.split(".")[0] in _INPUTS and key not in ignore]


def _cached_or_run(
    trial: optuna.Trial, cfg: DictConfig, pf: DictConfig, data: TrainVal
) -> tuple[list[CheckResult], str, int]:
    """The results, ``hit``/``miss``/``off``, and the number of the trial that ran the checks."""
    if not pf.cache:
        return run_checks(cfg, data), "off", trial.number
    key = _CACHE_ATTR + fingerprint(cfg, data, pf)
    seen = (id(trial.storage), trial.study.study_name, key)
    known = _SEEN.get(seen)
    if known is not None and known[0]() is trial.storage:  # this process read or wrote it: no storage read
        cached = known[1]
    else:
        cached = trial.study.user_attrs.get(key)
    if cached is not None:
        _remember(seen, trial, cached)
        return [CheckResult.from_dict(r) for r in cached["results"]], "hit", cached["trial"]
    results = run_checks(cfg, data)
    cached = {"trial": trial.number, "results": [r.to_dict() for r in results]}
    trial.study.set_user_attr(key, cached)
    _remember(seen, trial, cached)
    return results, "miss", trial.number


# (storage id, study name, cache key) -> (a weak reference to the storage, the cached entry): a study's
# cache entries never change once written, so what this process has read or written need not be read
# again. Weak: a storage that is gone (another sweep in this process) is not kept, and its id not trusted.
_SEEN: dict[tuple[int, str, str], tuple[weakref.ref, dict[str, Any]]] = {}
_SEEN_SIZE = 256


def _remember(seen: tuple[int, str, str], trial: optuna.Trial, cached: dict[str, Any]) -> None:
    if len(_SEEN) >= _SEEN_SIZE:
        _SEEN.clear()
    _SEEN[seen] = (weakref.ref(trial.storage), cached)


def preflight(trial: optuna.Trial, exp: Experiment, cfg: DictConfig, data: TrainVal, *,
              save: bool = True) -> tuple[list[CheckResult], str | None]:
    """Runs (or reuses) the checks for a trial and records them on it.

    Records the user attribute ``preflight``: ``{"cache": hit|miss|off, "<check>": {"passed", "value",
    "threshold"}, ...}``, and a markdown note for optuna-dashboard.

    Args:
        save: save the note now; False returns it for the trial's report to include (one note
            write per trial instead of two), unless a check failed (then it is saved: no report follows).

    Returns:
        The results and, with ``save=False``, the note not yet saved (None when no check ran).

    Raises:
        PreflightFailed: a check failed; ``fail_reason`` (and ``preflight.unfixable`` when no
            searched key can change the outcome) is already set on the trial.
    """
    pf = preflight_config(cfg)
    if not any(pf[check].enabled for check in CHECKS):
        return [], None
    results, cache, origin = _cached_or_run(trial, cfg, pf, data)
    # One attribute, one storage write: {"cache": "hit", "<check>": {"passed", "value", "threshold"}, ...}.
    record: dict[str, Any] = {"cache": cache}
    record.update({r.name: {"passed": r.passed, "value": r.value, "threshold": r.threshold} for r in results})
    trial.set_user_attr("preflight", record)
    failed = next((r for r in results if not r.passed), None)
    unfixable = failed is not None and pf.stop_on_unfixable and not searched_inputs(exp, cfg, pf)
    note = _note(results, cache, origin, unfixable)
    if save or failed is not None:
        _save_note(trial, note)
    if failed is None:
        return results, None if save else note
    trial.set_user_attr("fail_reason", reason(failed))
    if unfixable:
        trial.set_user_attr(UNFIXABLE_ATTR, True)
    raise PreflightFailed(failed, unfixable)


def render(results: Sequence[CheckResult]) -> str:
    """A markdown table of ``results`` and the advice of each failed check."""
    lines = ["| check | result | measured | threshold | where |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {'pass' if r.passed else '**FAIL**'} | {r.value:.4g} | {r.threshold:.4g} | "
                     f"{literal(r.where or '', in_table=True)} |")
    # Where and advice name the user's layers and parameters: literal text, never Markdown.
    lines += [f"\n**{r.name}**: {literal(r.advice)}" for r in results if not r.passed]
    return "\n".join(lines)


def _note(results: Sequence[CheckResult], cache: str, origin: int, unfixable: bool) -> str:
    source = {"hit": f"reused from the study's cache (run by trial {origin}, same architecture)",
              "miss": "run for this architecture (cached for later trials)", "off": "run (cache off)"}[cache]
    body = f"## Preflight\nChecks {source}.\n\n{render(results)}\n"
    if unfixable:
        body += "\nNo searched key can change this outcome: the sweep stops after this trial.\n"
    return body


def _save_note(trial: optuna.Trial, body: str) -> None:
    from optuna_dashboard import save_note  # imported here: it pulls in the dashboard's web stack

    save_note(trial, body)


class StopOnUnfixable:
    """Study callback: stops the sweep after a trial whose preflight failure no searched key can fix."""

    def __init__(self) -> None:
        self.tripped = False
        self.message: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL or not trial.user_attrs.get(UNFIXABLE_ATTR):
            return
        self.tripped = True
        self.message = (f"stopping after trial {trial.number}: {trial.user_attrs['fail_reason']}. "
                        "No searched key can change this check's inputs (model.*), so every trial would fail it; "
                        "fix the model or loss and rerun (or search a model key)")
        print(self.message, flush=True)  # the trial loop stops once tripped
