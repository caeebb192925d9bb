"""Seed-robust selection (docs/select.md): once a study holds ``sweep.n_trials`` finished trials, its
``select.top_k`` best configurations train again with ``select.n_seeds`` extra seeds each, and the
winner is the configuration with the best median over its seeds (the original run counts as one).

The re-trainings are trials of a linked study, ``<study>.select``, so that the main study's sampler,
pruner, ``n_trials`` and history stay as they were. Each of its trials is enqueued with the
configuration's parameters fixed and user attrs ``select.source`` (the main study's trial number),
``select.seed_index`` (1..n_seeds) and ``seed``; they run through the driver's own trial loop
(``_driver.run_trials``: slots, heartbeats, retries, interrupts, several workers), with no pruner.

What lives where:

- linked study user attrs: ``select.of`` (the main study's name), ``select.rounds`` (the pairs
  ``[source, seed_index]`` enqueued, per round; their total is the linked study's ``n_trials``);
- main study user attr ``select.result``: the ranking, the tests against the winner and the run the
  vault uses (``None`` after a run with ``select=off``).

Claims. Creating the linked study is the claim of round 1: a study name is unique in every Optuna
storage, so of several processes exactly one creates it and enqueues; the others wait until its
round is recorded. A later round (the study grew, or ``select.top_k`` / ``select.n_seeds`` rose)
is claimed the same way by creating the empty study ``<study>.select.round-<r>``, deleted again once
the round is recorded (a claimant that finds its round recorded meanwhile deletes it and looks again),
so that only the main and the linked study stay in the users' study list.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import html
import json
import math
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from omegaconf import OmegaConf
from optuna.exceptions import DuplicatedStudyError
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweeps._errors import ConfigError
from sweeps._interrupt import deferred
from sweeps.config._schema import select_config
from sweeps.experiment._build import derive_seed
from sweeps.storage._internals import study_storage
from sweeps.study import _records
from sweeps.study._records import PREFLIGHT_CACHE
from sweeps.study._stats import compare, median_or_worst
from sweeps.study._trials import FINISHED, count_trials, is_surplus, retried_numbers

if TYPE_CHECKING:  # annotations only
    from sweeps.experiment._experiment import Experiment

__all__ = [
    "RESULT", "SOURCE", "Linked", "clear", "current", "due", "extra_seed", "finish", "linked_experiment", "linked_name",
    "load_linked", "md_escape", "note_section", "prepare", "provenance", "top_configurations", "vault_run",
    "winner_trial", "write_csv", "write_note",
]

SOURCE, SEED_INDEX = "select.source", "select.seed_index"  # user attrs of a linked trial
OF, ROUNDS = "select.of", "select.rounds"  # user attrs of the linked study
RESULT = "select.result"  # a record of the main study (sweeps/study/_records.py)
NOTE_MARKER = "## Seed-robust selection"
_SEED_SALT = 0x5E1EC7  # keeps the extra seeds apart from trial_seed(study_seed, number)
_CLAIM_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.5
Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Linked:
    """The linked study and the experiment its trials run with (``sweep.n_trials``: its slots)."""

    exp: Experiment
    study: optuna.Study

    @property
    def pending(self) -> bool:
        return count_trials(self.study)[0] < self.exp.cfg.sweep.n_trials


def linked_name(study_name: str) -> str:
    return f"{study_name}.select"


def extra_seed(study_seed: int, index: int) -> int:
    """The seed of extra run ``index`` (1..n_seeds); the same for every configuration, so that the
    runs of two configurations pair up by seed."""
    return derive_seed(study_seed, _SEED_SALT, index)


def _maximize(study: optuna.Study) -> bool:
    return study.direction == StudyDirection.MAXIMIZE


def top_configurations(study: optuna.Study, top_k: int) -> list[FrozenTrial]:
    """The ``top_k`` best completed trials with distinct parameters, best first (ties: lower number)."""
    sign = -1.0 if _maximize(study) else 1.0
    ordered = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                     key=lambda t: (sign * t.value, t.number))
    out, seen = [], set()
    for trial in ordered:
        key = json.dumps(trial.params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(trial)
        if len(out) == top_k:
            break
    return out


def linked_experiment(exp: Experiment, n_trials: int) -> Experiment:
    """``exp`` for the linked study: its name, ``n_trials`` slots, and no pruner (every seed trains fully)."""
    cfg = copy.deepcopy(exp.cfg)
    struct = OmegaConf.is_struct(cfg)
    OmegaConf.set_struct(cfg, False)
    cfg.sweep.study_name = linked_name(exp.study_name)
    cfg.sweep.n_trials = n_trials
    cfg.sweep.pruner = "none"
    OmegaConf.set_struct(cfg, struct)
    return dataclasses.replace(exp, cfg=cfg)


def _open(storage: optuna.storages.BaseStorage, name: str, worker: int = 0) -> optuna.Study:
    # Every parameter is fixed by the queue: the sampler never samples; no trial is pruned.
    return optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=worker),
                             pruner=optuna.pruners.NopPruner())


def _n_slots(linked: optuna.Study) -> int:
    return sum(len(r["pairs"]) for r in linked.user_attrs.get(ROUNDS, []))


def load_linked(exp: Experiment, storage: optuna.storages.BaseStorage, worker: int = 0) -> Linked:
    """The linked study of ``exp``'s study, as a worker process opens it (after :func:`prepare`)."""
    study = _open(storage, linked_name(exp.study_name), worker)
    return Linked(linked_experiment(exp, _n_slots(study)), study)


def _create(storage: optuna.storages.BaseStorage, name: str, direction: StudyDirection) -> bool:
    try:
        storage.create_new_study([direction], name)
    except DuplicatedStudyError:
        return False
    return True


def _marker(name: str, number: int) -> str:
    return f"{name}.round-{number}"


def _claim_round(storage: optuna.storages.BaseStorage, linked: optuna.Study, number: int, created: bool,
                 direction: StudyDirection) -> bool:
    """Whether this process enqueues round ``number``: round 1 is claimed by creating the linked
    study; a later one by creating its marker study, released at once if the round was recorded
    (and its marker deleted) since it was read."""
    if number == 1:
        return created
    marker = _marker(linked.study_name, number)
    if not _create(storage, marker, direction):
        return False
    if len(linked.user_attrs.get(ROUNDS, [])) >= number:
        _delete(storage, marker)
        return False
    return True


def _delete(storage: optuna.storages.BaseStorage, name: str) -> None:
    try:
        storage.delete_study(storage.get_study_id_from_name(name))
    except KeyError:  # already gone
        pass


def _start(study: optuna.Study, linked: optuna.Study) -> None:
    """The attributes a new linked study carries: what it selects for, the metric's name, and the
    main study's preflight results (same architectures: the checks need not run again)."""
    linked.set_user_attr(OF, study.study_name)
    if study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            linked.set_metric_names(study.metric_names)
    for key, value in study.user_attrs.items():
        if key.startswith(PREFLIGHT_CACHE):
            linked.set_user_attr(key, value)


def due(exp: Experiment, study: optuna.Study, vault_opened: Callable[[], bool], say: Say) -> bool:
    """Whether to select now: on (``select=off`` sets a recorded selection aside), not a staged
    experiment, the study holds ``sweep.n_trials`` finished trials, and the vault was not opened
    (``vault_opened``: opened and ``vault.reopen`` false; then its winner stands)."""
    settings = select_config(exp.cfg)
    if not settings.enabled:
        clear(study, say)
        return False
    if exp.cfg.get("stages") is not None:
        say("select: off in staged experiments: the stages' winners are compared on one seed each (docs/select.md)")
        return False
    if count_trials(study)[0] < exp.cfg.sweep.n_trials:
        return False  # the vault stays sealed too, and says why
    if not vault_opened():
        return True
    recorded = current(study)
    if recorded is None or (recorded["top_k"], recorded["n_seeds"]) != (settings.top_k, settings.n_seeds):
        when = ("before any seed-robust selection" if recorded is None else
                f"after selecting with select.top_k={recorded['top_k']} select.n_seeds={recorded['n_seeds']}")
        say(f"select: the test vault was opened {when}; no new selection (vault.reopen=true selects and opens "
            "again, recorded in the audit list)")
    return False


def prepare(exp: Experiment, study: optuna.Study, storage: optuna.storages.BaseStorage, say: Say) -> Linked | None:
    """Creates or loads the linked study and enqueues the re-trainings not enqueued yet.

    Returns:
        The linked study, or None when no trial of ``study`` completed (nothing to select from).

    Raises:
        ConfigError: another process claimed a round and recorded no trials within a minute (it died).
    """
    settings = select_config(exp.cfg)
    top = top_configurations(study, settings.top_k)
    if not top:
        say("select: no trial completed, nothing to select from")
        return None
    name = linked_name(study.study_name)
    created = _create(storage, name, study.direction)
    linked = _open(storage, name)
    if created:
        _start(study, linked)
    wanted = [(t.number, j) for t in top for j in range(1, settings.n_seeds + 1)]
    by_number = {t.number: t for t in top}
    deadline = time.monotonic() + _CLAIM_WAIT_SECONDS
    while True:
        rounds = linked.user_attrs.get(ROUNDS, [])
        done = {tuple(p) for r in rounds for p in r["pairs"]}
        new = [p for p in wanted if p not in done]
        if not new:
            break
        number = len(rounds) + 1
        if _claim_round(storage, linked, number, created, study.direction):
            with deferred():  # a signal waits until the round is enqueued and recorded
                for source, index in new:
                    linked.enqueue_trial(by_number[source].params, user_attrs={
                        SOURCE: source, SEED_INDEX: index, "seed": extra_seed(exp.cfg.sweep.seed, index)})
                linked.set_user_attr(ROUNDS, [*rounds, {"pairs": [list(p) for p in new],
                                                        "n_finished": count_trials(study)[0], "at": _now()}])
                if number > 1:  # recorded: the marker has done its job and leaves the users' study list
                    _delete(storage, _marker(linked.study_name, number))
            say(f"select: re-training the top {len(top)} configurations with {settings.n_seeds} more seeds each "
                f"({len(new)} trainings) in study {name!r}")
            break
        if time.monotonic() > deadline:
            raise ConfigError(f"select: round {number} of study {name!r} was claimed by another process that enqueued "
                              f"nothing within {_CLAIM_WAIT_SECONDS:.0f}s (it may have died); delete the linked study "
                              f"(optuna delete-study --study-name {name} --storage STORAGE) and rerun")
        time.sleep(_POLL_SECONDS)
    return Linked(linked_experiment(exp, _n_slots(linked)), linked)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _runs(linked: optuna.Study) -> dict[tuple[int, int], FrozenTrial]:
    """The finished run of each ``(source, seed_index)``: retried and surplus trials left out."""
    trials = linked.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    out: dict[tuple[int, int], FrozenTrial] = {}
    for t in trials:
        if t.state in FINISHED and t.number not in retried and not is_surplus(t) and SOURCE in t.user_attrs:
            out.setdefault((t.user_attrs[SOURCE], t.user_attrs[SEED_INDEX]), t)
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def finish(exp: Experiment, study: optuna.Study, linked: optuna.Study, say: Say) -> dict[str, Any] | None:
    """Ranks the top configurations by their median over seeds, tests the winner against each
    runner-up, and records the result in ``study``'s user attr ``select.result`` and note.

    Returns:
        The result, or None while some re-training has not finished (then says so).
    """
    settings = select_config(exp.cfg)
    top = top_configurations(study, settings.top_k)
    runs = _runs(linked)
    indices = range(1, settings.n_seeds + 1)
    missing = [(t.number, j) for t in top for j in indices if (t.number, j) not in runs]
    if missing:
        say(f"select: {len(missing)} of {len(top) * settings.n_seeds} re-trainings have not finished; the test vault "
            "stays sealed; rerun the same command to finish them")
        return None
    maximize = _maximize(study)
    rows = []
    for rank_by_value, trial in enumerate(top, start=1):
        extra = [runs[(trial.number, j)] for j in indices]
        values = [trial.value, *(r.value if r.state == TrialState.COMPLETE else None for r in extra)]
        rows.append({"trial": trial.number, "params": trial.params, "rank_by_value": rank_by_value,
                     "seeds": [trial.user_attrs.get("seed"), *(r.user_attrs.get("seed") for r in extra)],
                     "values": values,
                     "runs": [[study.study_name, trial.number], *([linked.study_name, r.number] for r in extra)],
                     "median": median_or_worst(values, maximize)})
    sign = -1.0 if maximize else 1.0
    rows.sort(key=lambda r: (sign * r["median"], r["rank_by_value"]))  # ties: the better single run
    winner = rows[0]
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        comparison = compare(winner["values"], row["values"], maximize) if rank > 1 else None
        row.update({"n_pairs": comparison.n_pairs if comparison else None,
                    "effect": _finite(comparison.effect) if comparison else None,
                    "p_wilcoxon": _finite(comparison.p_wilcoxon) if comparison else None,
                    "p_mannwhitney": _finite(comparison.p_mannwhitney) if comparison else None,
                    "median": _finite(row["median"])})
    result = {"linked_study": linked.study_name, "metric": exp.cfg.sweep.metric,
              "direction": study.direction.name.lower(),
              "top_k": settings.top_k, "n_seeds": settings.n_seeds,
              "extra_seeds": [extra_seed(exp.cfg.sweep.seed, j) for j in indices],
              "n_finished": count_trials(study)[0], "winner": winner["trial"], "best_trial": top[0].number,
              "run": _representative(winner, maximize), "rows": rows, "selected_at": _now()}
    recorded = current(study)
    if recorded is not None and recorded["rows"] == json.loads(json.dumps(rows)):
        result = recorded  # a rerun: the same selection, already recorded and in the note
    else:
        _records.write(study, RESULT, result)
        write_note(study)
    say(_describe(result))
    return result


def _representative(row: dict[str, Any], maximize: bool) -> dict[str, Any]:
    """The winner's run whose value is nearest its median (ties: the earlier seed, the original run
    first): the run whose model the vault evaluates. The original run where most runs failed."""
    median = row["median"]
    index = 0
    if median is not None and math.isfinite(median):
        completed = [i for i, v in enumerate(row["values"]) if v is not None]
        index = min(completed, key=lambda i: (abs(row["values"][i] - median), i))
    study_name, number = row["runs"][index]
    return {"study": study_name, "trial": number, "seed": row["seeds"][index], "value": row["values"][index],
            "seed_index": index}


def _describe(result: dict[str, Any]) -> str:
    rows = result["rows"]
    winner = rows[0]
    text = (f"select: winner trial {winner['trial']} ({result['metric']} median {_fmt(winner['median'])} over "
            f"{len(winner['values'])} seeds; best single run: trial {result['best_trial']})")
    if len(rows) > 1:
        runner = rows[1]
        text += (f"; runner-up trial {runner['trial']} median {_fmt(runner['median'])}, "
                 f"effect {_fmt(runner['effect'])}, Wilcoxon p={_fmt(runner['p_wilcoxon'], '.3g')}")
    return text


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def current(study: optuna.Study) -> dict[str, Any] | None:
    """The recorded selection, if it was made on the trials the study holds now."""
    result = _records.read(study, RESULT)
    if not result or result.get("n_finished") != count_trials(study)[0]:
        return None
    return result


def clear(study: optuna.Study, say: Say) -> None:
    """``select=off``: sets a recorded selection aside; the winner is the best trial again."""
    if _records.read(study, RESULT):
        _records.write(study, RESULT, None)
        say("select=off: the recorded seed-robust selection is set aside; the winner is the best single trial")


def _trial(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> FrozenTrial:
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))


def vault_run(study: optuna.Study) -> tuple[FrozenTrial, int, dict[str, Any] | None]:
    """What the vault opens for: ``(the run whose model it evaluates, the main study's trial number of
    its configuration, the selection's provenance)``; the best trial and None without a selection."""
    result = current(study)
    if result is None:
        best = study.best_trial
        return best, best.number, None
    run = result["run"]
    return _trial(study_storage(study), run["study"], run["trial"]), result["winner"], provenance(result)


def winner_trial(study: optuna.Study) -> FrozenTrial:
    """The main study's trial of the winning configuration: the selection's winner, else the best trial."""
    result = current(study)
    if result is None:
        return study.best_trial
    return _trial(study_storage(study), study.study_name, result["winner"])


def provenance(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``best.yaml`` and the vault's result say about the selection."""
    if result is None:
        return None
    winner = result["rows"][0]
    out = {"linked_study": result["linked_study"], "trial": winner["trial"], "seeds": winner["seeds"],
           "values": winner["values"], "median": winner["median"], "rank_by_value": winner["rank_by_value"],
           "best_single_run_trial": result["best_trial"], "top_k": result["top_k"], "n_seeds": result["n_seeds"],
           "final_run": result["run"]}
    if len(result["rows"]) > 1:
        runner = result["rows"][1]
        out["runner_up"] = {k: runner[k] for k in ("trial", "median", "effect", "p_wilcoxon", "p_mannwhitney")}
    return out


def write_csv(study: optuna.Study, folder: Path) -> Path | None:
    """``selection.csv``: one row per configuration, by rank; removes a stale one where no current
    selection exists."""
    import pandas as pd

    path = folder / "selection.csv"
    result = current(study)
    if result is None:
        path.unlink(missing_ok=True)
        return None
    records = []
    for row in result["rows"]:
        record: dict[str, Any] = {"rank": row["rank"], "trial": row["trial"], "rank_by_value": row["rank_by_value"]}
        record.update({f"params_{k}": v for k, v in row["params"].items()})
        record.update({f"seed_{i}": s for i, s in enumerate(row["seeds"])})
        record.update({f"value_{i}": v for i, v in enumerate(row["values"])})
        record.update({k: row[k] for k in ("median", "n_pairs", "effect", "p_wilcoxon", "p_mannwhitney")})
        record["winner"] = row["rank"] == 1
        records.append(record)
    pd.DataFrame.from_records(records).to_csv(path, index=False)
    return path


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_escape(value: Any) -> str:
    """``value`` as Markdown text that renders as itself: no link, no HTML, no table cell break."""
    text = html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def note_section(study: optuna.Study) -> str:
    """The selection's section of the study's note (Markdown), or "" without a current selection."""
    result = current(study)
    if result is None:
        return ""
    metric = md_escape(result["metric"])
    n_values = result["n_seeds"] + 1
    summary = (f"The top {len(result['rows'])} configurations trained again with {result['n_seeds']} more seeds "
               f"each (study `{md_escape(result['linked_study'])}`); ranked by the median {metric} over {n_values} "
               f"seeds. Winner: trial **{result['winner']}** (best single run: trial {result['best_trial']}); the "
               f"vault uses its run with seed {result['run']['seed']}.")
    lines = [NOTE_MARKER, "", summary, "",
             "| rank | trial | configuration | values | median | effect | Wilcoxon p | Mann-Whitney p |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        config = ", ".join(f"{md_escape(k)}={md_escape(v)}" for k, v in row["params"].items())
        values = ", ".join(_fmt(v) for v in row["values"])
        lines.append(f"| {row['rank']} | {row['trial']} | {config} | {values} | {_fmt(row['median'])} | "
                     f"{_fmt(row['effect'])} | {_fmt(row['p_wilcoxon'], '.3g')} | "
                     f"{_fmt(row['p_mannwhitney'], '.3g')} |")
    reading = (f"Effect: the winner's median advantage over the runner-up, paired by seed, in {metric}. With "
               f"{n_values} seeds the smallest two-sided Wilcoxon p-value is {2 / 2 ** n_values:.3g}: a large p "
               "says the seeds cannot tell the two apart, not that they are equal.")
    lines += ["", reading]
    return "\n".join(lines) + "\n"


def write_note(study: optuna.Study) -> None:
    """Puts the selection's section at the end of the study's note, keeping what the vault wrote."""
    from optuna_dashboard import get_note, save_note

    kept = (get_note(study) or "").split(NOTE_MARKER)[0].rstrip()
    section = note_section(study)
    save_note(study, f"{kept}\n\n{section}" if kept else section)
