"""``python -m sweeps.preflight +experiment=NAME [overrides...]``: run only the preflight checks.

The checks run for the experiment's base config (no searched value applied) and print a report.
"""

from __future__ import annotations

import sys
from typing import Sequence

from omegaconf import OmegaConf

from sweeps._cli import guarded
from sweeps._heap import leave

__all__ = ["main"]

USAGE = """usage: python -m sweeps.preflight +experiment=NAME [KEY=VALUE ...]

Runs the preflight checks (gradient, loss at initialization, overfitting a tiny subset) for the
experiment's base config and prints a report. Thresholds and switches: the preflight group
(preflight=default|strict|off, or preflight.gradient.threshold=1e-5 ...).
Exit codes: 0 all checks passed, 1 a check failed, 2 bad config.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(USAGE)
        return 0
    return guarded(lambda: _check(args))


def _check(args: list[str]) -> int:
    from sweeps.config._space import config_for
    from sweeps.experiment._experiment import prepare
    from sweeps.trial._preflight import run_checks

    exp, dataset = prepare(args, probe=False)  # the checks alone open no storage
    cfg = config_for(exp.cfg, exp.options, {}, {})
    data = dataset.train_val()
    target = OmegaConf.select(cfg, "model._target_")
    print(f"preflight of {exp.study_name}: model {target}, {len(data.y_train)} training samples, "
          f"{data.n_classes} classes")
    results = run_checks(cfg, data)
    for r in results:
        where = f"  at {r.where}" if r.where else ""
        print(f"  {r.name:<10} {'pass' if r.passed else 'FAIL':<5} {r.value:<10.4g} "
              f"threshold {r.threshold:<8.4g}{where}")
    for r in results:
        print(f"  {r.name}: {r.advice}")
    failed = [r.name for r in results if not r.passed]
    if not results:
        print("every check is off (preflight=off)")
    elif failed:
        print(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
    else:
        print(f"all {len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    leave(main())
