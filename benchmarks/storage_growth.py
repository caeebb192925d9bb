"""How the cost of a trial grows with the study: sweeps' per-trial path and a bare Optuna loop, with a
trivial objective, at several study sizes, on SQLite, a journal file and PostgreSQL.

    PYTHONPATH=$PWD python -m benchmarks --skip overhead,throughput,preflight,efficiency,hos,workers,scaling

The harness runs one child process per storage (``python -m benchmarks.storage_growth``): it fills
one study with pre-built finished trials (``study.add_trials``) up to each size in turn, then times
``--growth-trials`` trials in one call of ``sweeps.driver._driver.run_trials`` (ask, slot, heartbeat,
sampling, the duplicate check, tell, the counts, the best trial, the progress line; from one progress
line to the next) and then as many through a bare ``study.optimize`` that samples the same space, on
the same study.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from benchmarks._storages import BASE, POSTGRES_URL, NoData, set_n_trials, temp_postgres, trivial_trials
from benchmarks._tables import env, spread, table

KINDS = ("sqlite", "journal", "postgresql")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--growth-sizes", default="100,1000,5000", help="finished trials in the study when timed")
    parser.add_argument("--growth-trials", type=int, default=30, help="trials timed at each size, per loop")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="PostgreSQL server for the storage sections "
                        "(a fresh database is made and dropped)")


def quick(args: argparse.Namespace) -> None:
    args.growth_sizes, args.growth_trials = "10,40", 4


def _prebuilt(exp: Any, n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` finished trials of the experiment's space (random parameters and values), built in memory."""
    rng = random.Random(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(n):
            trial = memory.ask()
            exp.space.sample(trial)
            memory.tell(trial, rng.random())
    return memory.get_trials(deepcopy=False)


def _bare_storage(kind: str, storage: str) -> Any:
    """What a bare Optuna loop opens: Optuna's own storage for the string, without sweeps' heartbeats."""
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(storage))
    return storage


def measure(kind: str, storage: str, sizes: list[int], n_timed: int) -> dict[str, Any]:
    """Per-trial seconds of sweeps' loop and of a bare loop at each size, on one study in ``storage``."""
    from sweeps.driver._driver import run_trials, storage_for
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study
    from sweeps.study._trials import tally

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, _ = prepare([*BASE, f"sweep.storage={storage}", "sweep.study_name=growth"])
    ours_storage = storage_for(exp)
    study = open_study(exp, ours_storage)
    bare = optuna.load_study(study_name="growth", storage=_bare_storage(kind, storage),
                             sampler=optuna.samplers.RandomSampler(seed=1))
    rng = random.Random(2)

    def bare_objective(trial: optuna.Trial) -> float:
        exp.space.sample(trial)
        return rng.random()

    results: dict[str, Any] = {"sizes": [], "fill_s": []}
    for size in sizes:
        started = time.perf_counter()
        missing = size - len(study.get_trials(deepcopy=False))
        if missing > 0:
            study.add_trials(_prebuilt(exp, missing, seed=size))
        fill_s = time.perf_counter() - started
        stamps: list[float] = []  # one per finished trial; the first trial also pays the loop's set-up
        set_n_trials(exp, tally(study.get_trials(deepcopy=False)).finished + n_timed + 1)
        with trivial_trials(stamps):
            run_trials(exp, NoData(), study, storage=ours_storage)
        ours = [b - a for a, b in itertools.pairwise(stamps)]
        bare_stamps = [time.perf_counter()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(n_timed):
                bare.optimize(bare_objective, n_trials=1)
                bare_stamps.append(time.perf_counter())
        bare_s = [b - a for a, b in itertools.pairwise(bare_stamps)]
        results["sizes"].append({"size": size, "sweeps_s": ours, "bare_s": bare_s, "fill_s": fill_s})
    return results


def _run_child(kind: str, storage: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out, log = folder / f"growth-{kind}.json", folder / f"growth-{kind}.log"
    command = [sys.executable, "-m", "benchmarks.storage_growth", "--kind", kind, "--storage", storage,
               "--sizes", args.growth_sizes, "--trials", str(args.growth_trials), "--out", str(out)]
    with open(log, "w") as stream:
        done = subprocess.run(command, cwd=folder, env=env(), stdout=stream, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        raise RuntimeError(f"storage growth on {kind} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}")
    return json.loads(out.read_text())


def section(args: argparse.Namespace, folder: Path) -> list[str]:
    """The harness section: a table of per-trial milliseconds by storage and study size."""
    rows, missing = [], []
    for kind in KINDS:
        with temp_postgres(args.postgres_url) if kind == "postgresql" else contextlib.nullcontext() as database:
            storage = {"sqlite": f"sqlite:///{folder}/growth.db", "journal": str(folder / "growth.journal"),
                       "postgresql": database}[kind]
            if storage is None:
                missing.append(kind)
                continue
            measured = _run_child(kind, storage, args, folder)
        for entry in measured["sizes"]:
            ours_ms = [1000 * s for s in entry["sweeps_s"]]
            bare_ms = [1000 * s for s in entry["bare_s"]]
            extra = statistics.median(ours_ms) - statistics.median(bare_ms)
            rows.append([kind, entry["size"], *spread(ours_ms, "{:.1f}"), *spread(bare_ms, "{:.1f}"), f"{extra:.1f}"])
    lines = [
        (f"One study per storage, filled with pre-built finished trials (`study.add_trials`) up to each size, then "
        f"{args.growth_trials} trials timed in one run of sweeps' trial loop (`run_trials`: ask, slot, heartbeat "
        "thread, sampling, the duplicate check, tell, the counts, the best trial, the progress line; from one progress "
        "line to the next), then as many through a bare `study.optimize(n_trials=1)`, on the same study; both sample "
        "the quickstart space with Optuna's random sampler and train nothing (a trivial objective). Per-trial wall "
        "time in ms; 'sweeps extra' is the difference of the medians. TPE's own cost, which grows with the study, is "
        "left out."),
        "",
    ]
    lines += table(["storage", "finished trials", "sweeps ms: min", "median", "max", "bare Optuna ms: min", "median",
                    "max", "sweeps extra (ms)"], rows)
    if missing:
        lines += ["", f"Not measured: {', '.join(missing)} (no PostgreSQL server at {_masked(args.postgres_url)})."]
    return lines


def _masked(url: str) -> str:
    from sweeps.storage._url import mask

    return mask(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage_growth", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = measure(args.kind, args.storage, sizes, args.trials)
    args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
