"""``python -m sweeps +experiment=NAME [overrides...]`` (or the ``sweeps`` command): Hydra's command line.

This module stays light: ``--help`` and ``--version`` answer without importing Hydra, torch or Optuna.
Everything else is :func:`sweeps.driver._app.run_app`.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Sequence

from sweeps._heap import leave, untraced_imports
from sweeps._packaged import experiments

__all__ = ["USAGE", "cli", "main"]

USAGE = """usage: python -m sweeps +experiment=NAME [KEY=VALUE ...]     (the `sweeps` command is the same)
       python -m sweeps -m +experiment=NAME[,NAME...] [KEY=VALUE,VALUE ...]
       python -m sweeps +experiment=NAME --cfg job|hydra|all [--resolve] [--package PKG]
       python -m sweeps +experiment=NAME --info [config|defaults|defaults-tree|plugins|searchpath]

Runs (or resumes) the experiment's Optuna study until it holds sweep.n_trials finished trials, trains the
best configurations again with more seeds (select=off: not), opens the test vault once for the winner,
and exports exports/<study>/best.yaml, trials.csv and selection.csv.

  +experiment=NAME      {experiments} (or yours: hydra.searchpath=[file://DIR])
  KEY=VALUE             Hydra overrides, e.g. sweep.n_trials=50 model=cnn sweep.storage=sqlite:///s.db
  -m, --multirun        one sweep per combination (+experiment=a,b sweep.seed=0,1,2), one after the
                        other, each validated before the first starts; stops at the first run that
                        does not exit 0 and exits with its code
  -c, --cfg job|hydra|all   validate, print the composed config (passwords masked), run nothing
  -i, --info            Hydra's view: config search path, defaults tree, composed config, plugins
  -sc, --shell-completion install=bash   tab completion for the `sweeps` command (bash, zsh, fish)
  --hydra-help          Hydra's own help;  --version  versions of sweeps and Hydra

Hydra keeps each run's config (.hydra/, passwords masked) and what it printed (sweeps.log) in
outputs/DATE/TIME/ (-m: multirun/DATE/TIME/N/). Turn that off with hydra.output_subdir=null (no .hydra/),
hydra/job_logging=none (no log file) and hydra.run.dir=. (no outputs/ folder). The study (sweeps.db),
sweeps_artifacts/ and exports/ go to the current folder.

Exit codes: 0 done; 1 stopped by sweep.max_failure_rate; 2 bad config or refused by the vault (nothing
was run or written; or the exports became unwritable during the run); 3 stopped by a preflight failure
that no searched key can fix; 4 the storage cannot be reached or opened; 5 trials ran but none
completed; 130 Ctrl-C; 143 SIGTERM (rerun to resume).
"""


def usage() -> str:
    return USAGE.format(experiments=", ".join(experiments()))


def version() -> str:
    found = []
    for name in ("sweeps", "hydra-core", "optuna", "torch"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(usage())
        return 0
    if "--version" in args:
        print(version())
        return 0
    from sweeps.driver._app import run_app  # Hydra, torch and Optuna: only for a command that needs them

    return run_app(args)


def cli() -> None:
    """The ``sweeps`` console script (and ``python -m sweeps``): :func:`main`, its imports and its
    exit without the garbage collector's walks of their heap (sweeps._heap). Only here: a caller of
    :func:`main` in its own process keeps its collector as it set it."""
    args = set(sys.argv[1:])
    if not {"-h", "--help", "--version"} & args:
        with untraced_imports():
            import sweeps.driver._app  # noqa: F401
    leave(main())


if __name__ == "__main__":
    cli()
