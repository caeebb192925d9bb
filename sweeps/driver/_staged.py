"""Running a staged experiment: each stage's study in turn, the comparison, one vault opening."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
import yaml
from omegaconf import OmegaConf

from practices.lr_range import LRRangeResult, classification_loss, lr_range_test
from sweeps._errors import ConfigError
from sweeps._markdown import literal
from sweeps._say import say
from sweeps.config._compose import Composed
from sweeps.config._destinations import check_destinations
from sweeps.config._space import config_for
from sweeps.driver._driver import run, storage_for
from sweeps.driver._export import export_study
from sweeps.driver._loop import best_trial
from sweeps.experiment._build import build, make_optimizer
from sweeps.experiment._data import PreparedData
from sweeps.experiment._experiment import Experiment, compile_experiment
from sweeps.experiment._probes import check_builds
from sweeps.experiment._stage_plan import Stage, parse_stages, stage_experiment, stage_row, stage_table, translated_lr
from sweeps.storage._url import artifact_dir, mask
from sweeps.study._study import open_study, recorded_experiment
from sweeps.vault._open import open_vault
from sweeps.vault._state import Vault, VaultRefused, describe_result

__all__ = ["StagedVault", "open_staged_vault", "run_stages", "staged_vault"]

_COMPARISON = "# Stage comparison"



def _existing(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _lr_range(
    exp: Experiment, dataset: PreparedData, storage: optuna.storages.BaseStorage
) -> tuple[Experiment, dict | None, LRRangeResult | None]:
    """The first stage with its ``optimizer.lr`` bounds set by an LR range test; a resumed study
    reuses the bounds it recorded, so that its search space stays the same."""
    study = _existing(storage, exp.study_name)
    recorded = study.user_attrs.get("lr_range") if study else None
    result = None
    if recorded is None:
        cfg = config_for(exp.cfg, {}, {}, {})
        data = dataset.train_val()
        built = build(cfg, data.in_shape, data.n_classes, seed=cfg.sweep.seed)
        result = lr_range_test(built.model, make_optimizer(cfg),
                               classification_loss(data, cfg.trainer.batch_size, cfg.sweep.seed),
                               lr_min=1e-5, lr_max=10.0, n_steps=200)
        recorded = {"low": result.low, "high": result.high, "steepest_lr": result.steepest_lr,
                    "min_loss_lr": result.min_loss_lr, "diverged_lr": result.diverged_lr}
    cfg = exp.cfg.copy()
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, "search.optimizer.lr", {"type": "float", "low": recorded["low"], "high": recorded["high"],
                                                   "log": True}, merge=False)
    if "optimizer.lr" in cfg.search:
        del cfg.search["optimizer.lr"]
    OmegaConf.set_struct(cfg, True)
    say(f"LR range test: learning rate searched in [{recorded['low']:.3g}, {recorded['high']:.3g}]")
    return compile_experiment(Composed(cfg, exp.choices, exp.overrides)), recorded, result


def _record_lr_range(study: optuna.Study, recorded: dict, result: LRRangeResult | None, exp: Experiment) -> None:
    if "lr_range" in study.user_attrs:
        return
    study.set_user_attr("lr_range", recorded)
    if result is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses)
    ax.axvspan(result.low, result.high, alpha=0.2, label="suggested range")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="LR range test")
    ax.legend()
    folder = artifact_dir(exp.cfg.sweep.storage, exp.cfg.sweep.artifact_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "lr_range.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        store = optuna.artifacts.FileSystemArtifactStore(str(folder))
        artifact_id = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(png), study_or_trial=study)
    study.set_user_attr("lr_range_plot", artifact_id)


def _enqueue_first(study: optuna.Study, exp: Experiment, stage: Stage, prev_study: optuna.Study) -> None:
    """Stage k's first trial: the previous best's values, its learning rate translated."""
    if study.get_trials(deepcopy=False):
        return
    best = prev_study.best_trial
    dists = exp.space.distributions()
    params = {k: v for k, v in best.params.items() if k in dists and not k.startswith("optimizer.")}
    lr = dists.get("optimizer.lr")
    if lr is not None:
        params["optimizer.lr"] = translated_lr(best.params, stage.lr_scale, lr.low, lr.high)
    study.enqueue_trial(params, user_attrs={"enqueued_from": f"{prev_study.study_name}#{best.number}"})


def run_stages(exp: Experiment, dataset: PreparedData) -> int:
    """Runs (or resumes) every stage, or only ``sweep.stage``; compares them and opens the vault once.

    Returns:
        The process exit code.
    """
    stages = parse_stages(OmegaConf.to_container(exp.cfg.stages, resolve=True))
    only = exp.cfg.sweep.stage
    if only is not None and only not in [s.name for s in stages]:
        raise ConfigError(f"sweep.stage must be one of {[s.name for s in stages]}, got {only!r}")
    for stage in stages:  # every stage's search against the base config, before anything is written
        check_builds(stage_experiment(exp, stage, f"{exp.study_name}.{stage.name}", None), dataset)
    storage = storage_for(exp)
    previous, done = None, []
    for index, stage in enumerate(stages):
        name = f"{exp.study_name}.{stage.name}"
        stage_exp = stage_experiment(exp, stage, name, previous)
        recorded = result = None
        if index == 0 and exp.cfg.lr_range_test:
            stage_exp, recorded, result = _lr_range(stage_exp, dataset, storage)
        check_builds(stage_exp, dataset)
        if only is None or only == stage.name:
            study = open_study(stage_exp, storage)
            if recorded is not None:
                _record_lr_range(study, recorded, result, stage_exp)
            if previous is not None:
                study.set_user_attr("previous_stage", previous[0].study_name)
                _enqueue_first(study, stage_exp, stage, done[-1][2])
            say(f"== stage {index + 1}/{len(stages)}: {stage.name} ({name}) ==")
            code = run(stage_exp, dataset)
            if code != 0:
                return code
        study = _existing(storage, name)
        best = _best(study)
        if best is None:
            if only is not None and index > [s.name for s in stages].index(only):
                break
            raise ConfigError(f"stage {stage.name!r} has no completed trial yet; "
                              f"run it first with sweep.stage={stage.name}")
        previous = (stage_exp, best)
        done.append((stage, stage_exp, study))
    if len(done) < len(stages):
        return 0
    return _finish(exp, dataset, done)


def _best(study: optuna.Study | None) -> optuna.trial.FrozenTrial | None:
    return None if study is None else best_trial(study)


def _finish(exp: Experiment, dataset: PreparedData, done: list[tuple[Stage, Experiment, optuna.Study]]) -> int:
    """Compares the stages, opens the vault once for the overall winner, writes the exports."""
    maximize = exp.cfg.sweep.direction == "maximize"
    rows = [stage_row(stage, study) for stage, _, study in done]
    folder = Path(exp.cfg.sweep.export_dir) / exp.study_name
    table = stage_table(rows, folder / "stages.csv")
    say("stages:\n" + table.to_string(index=False))
    pick = max if maximize else min
    stage, stage_exp, study = pick(done, key=lambda d: d[2].best_value)
    say(f"overall winner: stage {stage.name!r}, trial {study.best_trial.number}, "
         f"{exp.cfg.sweep.metric}={study.best_value:.4f}")
    for _, _, s in done:
        s.set_user_attr("stages", {"stages": [d[0].name for d in done], "winner": stage.name})
    opened = [s for _, _, s in done if Vault(s).claims()]
    if opened and not exp.cfg.vault.reopen:
        say(f"test vault already opened for this staged experiment (study {opened[0].study_name}): "
             f"{describe_result(Vault(opened[0]).result)}")
    elif exp.cfg.vault.auto_open:
        sweep = exp.cfg.sweep
        check_destinations(sweep.export_dir, study.study_name, sweep.storage, sweep.artifact_dir)  # before the opening
        result = open_vault(study, stage_exp, dataset, exp.cfg.sweep.storage, reopen=bool(opened), say=say)
        say(f"test vault opened: {describe_result(result)}")
    else:
        say(f"test vault stays sealed (vault.auto_open=false); open it with: python -m sweeps.vault open "
             f"{' '.join(exp.overrides)}")
    exported = export_study(study, exp.cfg.sweep.storage, exp.cfg.sweep.export_dir)
    _staged_exports(exported, folder, rows, stage.name)
    for _, _, stage_study in done:
        _write_note(stage_study, table, stage.name)
    say(f"exported: {folder / 'best.yaml'}, {folder / 'stages.csv'}")
    return 0


def _staged_exports(exported, folder: Path, rows: list[dict[str, Any]], winner: str) -> None:
    """exports/<name>/best.yaml: the winner's, with the stage comparison in its provenance."""
    if exported.best_yaml is None:
        return
    text = exported.best_yaml.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    config = yaml.safe_load(text)
    config["provenance"]["stages"] = {"winner": winner, "comparison": json.loads(json.dumps(rows, default=str))}
    (folder / "best.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    if exported.test_result:
        shutil.copy(exported.test_result, folder / "test_result.json")


def _write_note(study: optuna.Study, table: Any, winner: str) -> None:
    """Appends the stage comparison to the study's note, keeping what the vault wrote there."""
    from optuna_dashboard import get_note, save_note

    kept = (get_note(study) or "").split(_COMPARISON)[0].rstrip()
    # Stage names and parameter values come from the user's config: literal text, never Markdown.
    header = ("| " + " | ".join(literal(c, in_table=True) for c in table.columns) + " |\n|"
              + "---|" * len(table.columns) + "\n")
    rows = "".join("| " + " | ".join(literal(v, in_table=True) for v in row) + " |\n"
                   for row in table.itertuples(index=False))
    comparison = f"{_COMPARISON}\n\n{header}{rows}\nOverall winner: {literal(winner)}.\n"
    save_note(study, f"{kept}\n\n{comparison}" if kept else comparison)


@dataclasses.dataclass
class StagedVault:
    """Where the test vault of a staged experiment is: each stage's study (None where it never ran),
    the stage that holds the vault (the one opened, else the overall winner; None until every stage
    has a completed trial) and that stage's experiment, as recorded in its study."""

    stages: list[tuple[Stage, optuna.Study | None]]
    holder: Stage | None = None
    study: optuna.Study | None = None
    exp: Experiment | None = None
    opened: optuna.Study | None = None


def staged_vault(exp: Experiment, storage: optuna.storages.BaseStorage) -> StagedVault:
    """Finds the stage studies of ``exp`` (``<study>.<stage>``) and the one that holds the vault.

    Raises:
        ConfigError: no stage of the experiment has a study in the storage.
    """
    stages = parse_stages(OmegaConf.to_container(exp.cfg.stages, resolve=True))
    found = StagedVault([(stage, _existing(storage, f"{exp.study_name}.{stage.name}")) for stage in stages])
    if all(study is None for _, study in found.stages):
        names = ", ".join(f"{exp.study_name}.{stage.name}" for stage in stages)
        raise ConfigError(f"sweep.study_name: no study of staged experiment {exp.study_name!r} in "
                          f"{mask(exp.cfg.sweep.storage)} (its stages' studies: {names}); run it first: python -m "
                          f"sweeps {' '.join(exp.overrides)}")
    found.opened = next((study for _, study in found.stages if study is not None and Vault(study).claims()), None)
    bests = [(stage, study, _best(study)) for stage, study in found.stages]
    if all(best is not None for _, _, best in bests):
        pick = max if exp.cfg.sweep.direction == "maximize" else min
        found.holder, found.study, _ = pick(bests, key=lambda b: b[2].value)
    elif found.opened is not None:
        found.holder, found.study = (next((stage, study) for stage, study in found.stages if study is found.opened),
                                     found.opened)
    if found.study is not None:
        found.exp = _recorded_stage(exp, found.study)
    return found


def _recorded_stage(exp: Experiment, study: optuna.Study) -> Experiment:
    """The stage's experiment as its study recorded it, with this command's storage, folders and
    vault settings (the record masks the storage's password)."""
    stage_exp = Experiment.from_record(recorded_experiment(study))
    cfg = stage_exp.cfg
    for key in ("sweep.storage", "sweep.export_dir", "sweep.artifact_dir"):
        OmegaConf.update(cfg, key, OmegaConf.select(exp.cfg, key), merge=False)
    cfg.vault = copy.deepcopy(exp.cfg.vault)
    stage_exp.overrides = list(exp.overrides)
    return stage_exp


def open_staged_vault(exp: Experiment, dataset: PreparedData, found: StagedVault, say: Any) -> dict[str, Any]:
    """``python -m sweeps.vault open`` for a staged experiment: opens the overall winner's vault once
    and writes the staged exports (``exports/<experiment>/best.yaml``, ``stages.csv``, ``test_result.json``).

    Raises:
        ConfigError: a stage has no completed trial yet.
        VaultRefused: the vault of some stage was opened and ``vault.reopen`` is false.
    """
    missing = [stage.name for stage, study in found.stages if _best(study) is None]
    if missing:
        raise ConfigError(f"stage {missing[0]!r} has no completed trial yet; run it first with "
                          f"sweep.stage={missing[0]}: the vault opens once, for the winner of all stages")
    if found.opened is not None and not exp.cfg.vault.reopen:
        raise VaultRefused(f"the test vault of staged experiment {exp.study_name!r} was opened (study "
                           f"{found.opened.study_name!r}): {describe_result(Vault(found.opened).result)}. A second "
                           "opening is refused; force it with vault.reopen=true (recorded in the audit list)")
    sweep = exp.cfg.sweep
    check_destinations(sweep.export_dir, found.study.study_name, sweep.storage, sweep.artifact_dir)
    result = open_vault(found.study, found.exp, dataset, sweep.storage, reopen=found.opened is not None, say=say)
    folder = Path(sweep.export_dir) / exp.study_name
    rows = [stage_row(stage, study) for stage, study in found.stages]
    stage_table(rows, folder / "stages.csv")
    _staged_exports(export_study(found.study, sweep.storage, sweep.export_dir), folder, rows, found.holder.name)
    return result
