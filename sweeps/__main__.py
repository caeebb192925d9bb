"""``python -m sweeps +experiment=NAME [overrides...]``: compose once, validate, run."""

from __future__ import annotations

import copy
import sys
from typing import Sequence

from omegaconf import OmegaConf

from sweeps._cli import guarded

USAGE = """usage: python -m sweeps +experiment=NAME [KEY=VALUE ...] [--cfg]

Runs (or resumes) the experiment's Optuna study until it holds sweep.n_trials finished trials,
then exports exports/<study>/best.yaml and trials.csv.

  +experiment=NAME   an experiment in conf/experiment/ (or on hydra.searchpath)
  KEY=VALUE          Hydra overrides, e.g. sweep.n_trials=50 model=cnn sweep.storage=sqlite:///s.db
  --cfg              validate, print the composed config (storage password masked) and exit
Exit codes: 0 done; 1 stopped by sweep.max_failure_rate; 2 bad config or refused by the vault (nothing
was run or written); 3 stopped by a preflight failure that no searched key can fix; 4 the storage cannot
be reached or opened; 5 trials ran but none completed; 130 Ctrl-C; 143 SIGTERM (rerun to resume).
"""


def _show(overrides: list[str]) -> int:
    from sweeps._experiment import prepare
    from sweeps._storage import mask

    exp, _ = prepare(overrides, probe=False)
    cfg = copy.deepcopy(exp.cfg)
    cfg.sweep.storage = mask(cfg.sweep.storage)
    print(OmegaConf.to_yaml(cfg))
    return 0


def _run(overrides: list[str]) -> int:
    from sweeps._driver import run
    from sweeps._experiment import prepare

    exp, data = prepare(overrides)
    if exp.cfg.get("stages") is not None:
        from sweeps._staged import run_stages

        return run_stages(exp, data)
    return run(exp, data)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(USAGE)
        return 0
    overrides = [a for a in args if a != "--cfg"]
    return guarded(lambda: _show(overrides) if "--cfg" in args else _run(overrides))


if __name__ == "__main__":
    sys.exit(main())
