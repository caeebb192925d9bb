"""``python -m sweeps.train exports/<study>/best.yaml``: train an exported configuration once.

With the recorded seed, on the CPU, it reproduces the best trial's validation metric exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps._build import train
from sweeps._cli import guarded
from sweeps._config import set_direction, validate_structure
from sweeps._errors import ConfigError
from sweeps._experiment import Experiment
from sweeps._monitor import make_monitor
from sweeps._space import SearchSpace

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sweeps.train", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="an exported best.yaml")
    parser.add_argument("--seed", type=int, default=None, help="override the recorded seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return guarded(lambda: _train(args))


def _load(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config: no file at {str(path)!r}")
    try:
        cfg = OmegaConf.load(path)
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {str(path)!r} is not a YAML config: {type(exc).__name__}: {exc}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config: {str(path)!r} holds no mapping (an exported best.yaml is one)")
    cfg.pop("defaults", None)
    validate_structure(cfg)
    set_direction(cfg)
    return cfg


def _train(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    provenance = cfg.get("provenance") or {}
    seed = args.seed if args.seed is not None else provenance.get("seed")
    if seed is None:
        raise ConfigError("provenance.seed is missing; pass --seed N")
    data = Experiment(cfg, {}, {}, SearchSpace((), ())).load().train_val()
    # The trial's early stopping decided how many epochs it ran: the rerun needs the same.
    monitor = make_monitor(cfg, checkpoints="none")
    result, _ = train(cfg, data, int(seed), callbacks=[monitor] if monitor else [])
    metric = cfg.sweep.metric
    print(f"{metric}={result.best_value:.6f} at epoch {result.best_epoch} of {result.epochs_run} (seed {seed})")
    if "value" in provenance:
        same = result.best_value == provenance["value"]
        print(f"recorded in trial {provenance.get('trial')}: {metric}={provenance['value']:.6f} -> "
              + ("reproduced exactly" if same else f"differs by {result.best_value - provenance['value']:+.2e}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
