"""``python -m sweeps +experiment=NAME [overrides...]``: compose once, validate, run."""

from __future__ import annotations

import sys
from typing import Sequence

from omegaconf import OmegaConf

from sweeps._errors import ConfigError
from sweeps._exit import EXIT_SIGINT

USAGE = """usage: python -m sweeps +experiment=NAME [KEY=VALUE ...] [--cfg]

Runs (or resumes) the experiment's Optuna study until it holds sweep.n_trials finished trials,
then exports exports/<study>/best.yaml and trials.csv.

  +experiment=NAME   an experiment in conf/experiment/ (or on hydra.searchpath)
  KEY=VALUE          Hydra overrides, e.g. sweep.n_trials=50 model=cnn sweep.storage=sqlite:///s.db
  --cfg              print the composed config and exit
Exit codes: 0 done, 1 stopped by sweep.max_failure_rate, 2 bad config (nothing was run or written),
3 stopped early by a preflight check that failed and that no searched key can fix.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(USAGE)
        return 0
    show_cfg = "--cfg" in args
    overrides = [a for a in args if a != "--cfg"]
    from sweeps._driver import run
    from sweeps._experiment import prepare

    try:
        exp, data = prepare(overrides)
        if show_cfg:
            print(OmegaConf.to_yaml(exp.cfg))
            return 0
        if exp.cfg.get("stages") is not None:
            from sweeps._staged import run_stages

            return run_stages(exp, data)
        return run(exp, data)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the sweep started (composing, loading data); run() handles its own
        print("interrupted before the sweep started; nothing was run", file=sys.stderr)
        return EXIT_SIGINT


if __name__ == "__main__":
    sys.exit(main())
