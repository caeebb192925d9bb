"""``python -m sweeps.train exports/<study>/best.yaml [KEY=VALUE ...]``: train an exported configuration
once; or ``python -m sweeps.train +experiment=NAME [KEY=VALUE ...]``: train an experiment's base
configuration once (its ``search:`` is not sampled), with the overrides ``python -m sweeps`` takes.

With the recorded seed, on the CPU, a best.yaml reproduces the best trial's validation metric exactly.
Each epoch shows as a status line on a terminal, and as at most about ten lines in a log.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps._cli import guarded
from sweeps._errors import ConfigError
from sweeps._heap import leave
from sweeps.config._schema import set_direction, validate_structure
from sweeps.config._space import SearchSpace
from sweeps.experiment._build import train
from sweeps.experiment._experiment import Experiment
from sweeps.trial._monitor import make_monitor
from sweeps.trial._progress import EpochProgress

__all__ = ["main"]

_LOG_LINES = 10  # epoch lines at most where output is no terminal
_ABSENT = object()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sweeps.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("args", nargs="*", metavar="CONFIG_OR_OVERRIDE",
                        help="an exported best.yaml, then KEY=VALUE overrides; or only overrides "
                             "(+experiment=NAME trainer.max_epochs=3), as python -m sweeps takes them")
    parser.add_argument("--seed", type=int, default=None, help="override the recorded seed (default: "
                        "provenance.seed of a best.yaml, else sweep.seed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return guarded(lambda: _train(args))


def _load(path: Path, overrides: Sequence[str] = ()) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config: no file at {str(path)!r}")
    try:
        cfg = OmegaConf.load(path)
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {str(path)!r} is not a YAML config: {type(exc).__name__}: {exc}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config: {str(path)!r} holds no mapping (an exported best.yaml is one)")
    cfg.pop("defaults", None)
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or key.startswith(("+", "~")) or OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"{override}: overrides of a best.yaml must be KEY=VALUE with a KEY the file holds")
        OmegaConf.update(cfg, key, yaml.safe_load(value) if value else value, merge=False)
    validate_structure(cfg)
    set_direction(cfg)
    return cfg


def _compose(overrides: Sequence[str]) -> tuple[DictConfig, Experiment]:
    """The experiment's base config, composed and validated as ``python -m sweeps`` does (no storage)."""
    from sweeps.config._space import config_for
    from sweeps.experiment._experiment import prepare

    exp, _ = prepare(list(overrides), probe=False)
    return config_for(exp.cfg, exp.options, {}, {}), exp


def _train(args: argparse.Namespace) -> int:
    first = args.args[0] if args.args else None
    if first is not None and "=" not in first:
        cfg = _load(Path(first), args.args[1:])
        provenance = cfg.get("provenance") or {}
        seed = args.seed if args.seed is not None else provenance.get("seed")
        if seed is None:
            raise ConfigError("provenance.seed is missing; pass --seed N")
        data = Experiment(cfg, {}, {}, SearchSpace((), ())).load().train_val()
    else:
        cfg, exp = _compose(args.args)
        provenance = {}
        seed = args.seed if args.seed is not None else cfg.sweep.seed
        data = exp.load().train_val()
        name = exp.choices.get("experiment") or "the default config"
        searched = ", ".join(exp.space.searched_keys)
        print(f"training {name} once: its base values" + (f" (not searched here: {searched})" if searched else ""),
              flush=True)
    # The trial's early stopping decided how many epochs it ran: the rerun needs the same.
    monitor = make_monitor(cfg, checkpoints="none")
    metric = cfg.sweep.metric
    progress = EpochProgress("train", cfg.trainer.max_epochs, metric, max_lines=_LOG_LINES)
    result, _ = train(cfg, data, int(seed), callbacks=[*([monitor] if monitor else []), progress])
    print(f"{metric}={result.best_value:.6f} at epoch {result.best_epoch} of {result.epochs_run} (seed {seed})")
    if "value" in provenance:
        same = result.best_value == provenance["value"]
        print(f"recorded in trial {provenance.get('trial')}: {metric}={provenance['value']:.6f} -> "
              + ("reproduced exactly" if same else f"differs by {result.best_value - provenance['value']:+.2e}"))
    return 0


if __name__ == "__main__":
    leave(main())
