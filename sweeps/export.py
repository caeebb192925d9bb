"""``python -m sweeps.export --storage URL --study NAME``: export any study on demand.

Writes ``<out>/<study>/best.yaml`` (a Hydra experiment file holding the best trial's exact
configuration and its provenance) and ``<out>/<study>/trials.csv`` (every trial, via pandas).
"""

from __future__ import annotations

import argparse
from typing import Sequence

import optuna

from sweeps._cli import guarded
from sweeps._errors import ConfigError
from sweeps._heap import leave
from sweeps.driver._export import export_study
from sweeps.storage._url import check_storage, mask, open_storage, probe_storage, storage_file
from sweeps.study._study import recorded_experiment

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sweeps.export", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///sweeps.db", help="SQLAlchemy URL or journal file path "
                        "(default: %(default)s)")
    parser.add_argument("--study", required=True, help="study name (an experiment's name by default)")
    parser.add_argument("--out", default="exports", help="export folder (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return guarded(lambda: _export(args))


def _export(args: argparse.Namespace) -> int:
    check_storage(args.storage, key="--storage")
    probe_storage(args.storage, key="--storage")
    file = storage_file(args.storage)
    if file is not None and not file.exists():  # opening it would create an empty one
        raise ConfigError(f"--storage {mask(args.storage)!r}: no file at {str(file)!r}; "
                          "name the storage the sweep used")
    storage = open_storage(args.storage)
    names = [s.study_name for s in optuna.study.get_all_study_summaries(storage) if ".vault-" not in s.study_name]
    if args.study not in names:
        raise ConfigError(f"--study: no study {args.study!r} in {mask(args.storage)}; studies there: {names}")
    study = optuna.load_study(study_name=args.study, storage=storage)
    if recorded_experiment(study) is None:
        raise ConfigError(f"--study: {args.study!r} was not created by sweeps (no 'experiment' attribute)")
    exported = export_study(study, args.storage, args.out)
    print(f"wrote {exported.trials_csv}"
          + (f" and {exported.best_yaml}" if exported.best_yaml else " (no completed trial: no best.yaml)"))
    return 0


if __name__ == "__main__":
    leave(main())
