"""``python -m sweeps.vault status|open +experiment=NAME [overrides...]``: the test vault of a study.

For a staged experiment (``stages:``) both commands work on its stages' studies: ``status`` lists
them and shows the vault of the stage that holds it (the one opened, else the overall winner);
``open`` opens the overall winner's vault and writes the staged exports.

``status`` shows whether the vault is sealed or opened, the split fingerprint (and whether today's
data still cut the same test split), the duplicates found when sealing, the result and the audit
list; it writes nothing. ``open`` opens the vault now: for multi-worker sweeps where no single worker
should decide (set ``vault.auto_open=false`` on the workers), or to open a study that stopped early.
"""

from __future__ import annotations

import sys
from typing import Sequence

import optuna

from sweeps._cli import guarded
from sweeps._errors import ConfigError
from sweeps._heap import leave
from sweeps._say import say

__all__ = ["main"]

USAGE = """usage: python -m sweeps.vault status|open +experiment=NAME [KEY=VALUE ...]

  status   sealed or opened, the split fingerprint, duplicates, the result and the audit list
  open     open the vault now: evaluate the best trial's final model on the test split, once
           (a second opening needs vault.reopen=true and is recorded in the audit list)
Takes the same overrides as python -m sweeps (they name the study and its storage).
Exit codes: 0 done, 2 bad config, no such study, or an opening refused, 4 the storage cannot be reached.
"""
COMMANDS = ("status", "open")



def _load(overrides: Sequence[str]):
    from sweeps.experiment._experiment import prepare
    from sweeps.storage._url import mask, open_storage, storage_file

    exp, data = prepare(overrides)
    storage_url = exp.cfg.sweep.storage
    file = storage_file(storage_url)
    if file is not None and not file.exists():  # opening it would create an empty one
        raise ConfigError(f"sweep.storage: no study {exp.study_name!r}: no file at {str(file)!r}; run the sweep first "
                          f"(python -m sweeps {' '.join(overrides)}) or name the storage it used")
    storage = open_storage(storage_url)
    if exp.cfg.stages is not None:
        from sweeps.driver._staged import staged_vault

        return exp, data, staged_vault(exp, storage)
    try:
        storage.get_study_id_from_name(exp.study_name)
    except KeyError:
        raise ConfigError(f"sweep.study_name: no study {exp.study_name!r} in {mask(storage_url)}; "
                          f"run the sweep first: python -m sweeps {' '.join(overrides)}") from None
    return exp, data, optuna.load_study(study_name=exp.study_name, storage=storage)


def status(overrides: Sequence[str]) -> int:
    from sweeps.storage._url import mask
    from sweeps.study._study import FINISHED
    from sweeps.vault._state import Vault, describe_result

    exp, data, study = _load(overrides)
    if not isinstance(study, optuna.Study):
        exp, study = _staged_status(exp, study)
        if study is None:
            return 0
    vault = Vault(study)
    n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    print(f"study {study.study_name!r} in {mask(exp.cfg.sweep.storage)}: {n_finished} of "
          f"{exp.cfg.sweep.n_trials} trials finished")
    seal = vault.seal
    if seal is None:
        print("vault: not sealed yet (the study was created before the vault; the next run seals it)")
        return 0
    same = "matches today's data" if seal["fingerprint"] == data.sealed.fingerprint else \
        f"DIFFERS from today's data ({data.sealed.fingerprint[:16]}): runs are refused"
    print(f"vault: {vault.state()}")
    print(f"split fingerprint: {seal['fingerprint']} ({same})")
    print(f"test samples: {seal['n_test']}; shared with train/validation: {seal['duplicates']} "
          f"(dropped: {seal['dropped_duplicates']})")
    if vault.result:
        print(f"result: {describe_result(vault.result)}")
    if vault.forced:
        print(f"FORCED actions: {len(vault.forced)} (vault.reopen=true): "
              "the test score is no longer an honest estimate")
    print("audit:")
    for event in vault.audit:
        extra = " (forced)" if event.get("forced") else ""
        print(f"  {event['at']}  {event['event']}{extra}  by {event['host']} (pid {event['pid']})")
    return 0


def _staged_status(exp, found):
    """Prints each stage's study; returns the stage experiment and study that hold the vault, or
    (None, None) while no stage can hold it yet."""
    from sweeps.driver._staged import _best

    metric = exp.cfg.sweep.metric
    print(f"staged experiment {exp.study_name!r}: {len(found.stages)} stages")
    for stage, study in found.stages:
        if study is None:
            print(f"  stage {stage.name}: study {exp.study_name}.{stage.name} not started")
            continue
        best = _best(study)
        text = f"best {metric}={best.value:.4f} (trial {best.number})" if best else "no completed trial"
        n_finished = len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
        print(f"  stage {stage.name}: study {study.study_name!r}, {n_finished} of {stage.n_trials} trials finished, "
              f"{text}")
    if found.study is None:
        print("vault: sealed; it opens once, for the overall winner, after every stage has a completed trial")
        return None, None
    print(f"the vault of stage {found.holder.name!r} ("
          + ("opened" if found.study is found.opened else "overall winner") + "):")
    return found.exp, found.study


def open_(overrides: Sequence[str]) -> int:
    from sweeps.config._destinations import check_destinations
    from sweeps.driver._export import export_study
    from sweeps.study._study import FINISHED
    from sweeps.vault._open import open_vault
    from sweeps.vault._state import VaultBusy, VaultRefused, describe_result

    exp, data, study = _load(overrides)
    if not isinstance(study, optuna.Study):
        from sweeps.driver._staged import open_staged_vault

        result = open_staged_vault(exp, data, study, say)
        say(f"test vault opened: {describe_result(result)}")
        say(f"exported: {exp.cfg.sweep.export_dir}/{exp.study_name}/ (best.yaml, stages.csv, test_result.json)")
        return 0
    n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if n_finished < exp.cfg.sweep.n_trials:
        say(f"note: the study holds {n_finished} of sweep.n_trials={exp.cfg.sweep.n_trials} finished trials; "
             "opening now ends its tuning")
    sweep = exp.cfg.sweep
    check_destinations(sweep.export_dir, study.study_name, sweep.storage, sweep.artifact_dir)  # before the one opening
    try:
        result = open_vault(study, exp, data, exp.cfg.sweep.storage, reopen=exp.cfg.vault.reopen, say=say)
    except VaultBusy as exc:
        raise VaultRefused(f"{exc}: it opens the vault; see python -m sweeps.vault status") from None
    say(f"test vault opened: {describe_result(result)}")
    exported = export_study(study, exp.cfg.sweep.storage, exp.cfg.sweep.export_dir)
    say(f"exported: {exported.test_result}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS or {"-h", "--help"} & set(args):
        print(USAGE, file=sys.stdout if {"-h", "--help"} & set(args) else sys.stderr)
        return 0 if {"-h", "--help"} & set(args) else 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command, overrides = args[0], args[1:]
    return guarded(lambda: status(overrides) if command == "status" else open_(overrides))


if __name__ == "__main__":
    leave(main())
