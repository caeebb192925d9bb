"""Trials per second with 1, 4 and 8 worker processes on one study, with a trivial objective, on a
journal file, PostgreSQL, and PostgreSQL behind Optuna's gRPC storage proxy.

    PYTHONPATH=$PWD python -m benchmarks --skip overhead,throughput,preflight,efficiency,hos,workers,growth

The harness runs one child process per storage (``python -m benchmarks.storage_scaling``). The child
starts as many worker processes as the largest count, once; each composes and validates the
experiment and waits. Each round then gives a fresh study (a fresh journal file) to N of them, lets
them go at once, and each runs ``sweeps.driver._driver.run_trials`` (the real trial loop: slots, heartbeats,
counts, the duplicate check) with an objective that samples and trains nothing, until the study holds
``--scaling-trials`` finished trials. Trials/s: that count over the wall from the start signal to the
last worker's end. Process start-up and imports are outside the timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._storages import BASE, NoData, grpc_proxy, set_n_trials, temp_postgres, trivial_trials
from benchmarks._tables import env, spread, table

KINDS = ("journal", "postgresql", "grpc")
LABELS = {"journal": "journal file", "postgresql": "PostgreSQL", "grpc": "gRPC proxy -> PostgreSQL"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scaling-workers", default="1,4,8", help="worker process counts")
    parser.add_argument("--scaling-trials", type=int, default=200, help="trials per study (round)")


def quick(args: argparse.Namespace) -> None:
    args.scaling_workers, args.scaling_trials = "1,2", 8


def _worker(index: int, commands: Any, results: Any) -> None:
    """One worker process: prepares the experiment once, then runs the rounds it is given."""
    import optuna

    from sweeps.driver._driver import run_trials, storage_for
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, _ = prepare([*BASE, "sweep.storage=unused.journal"], probe=False)
    results.put(("up", index))
    while True:
        command = commands.get()
        if command is None:
            return
        storage_url, study_name, n_trials = command
        exp.cfg.sweep.storage, exp.cfg.sweep.study_name = storage_url, study_name
        set_n_trials(exp, n_trials)
        storage = storage_for(exp)
        study = open_study(exp, storage, worker=index + 1)
        results.put(("ready", index))
        commands.get()  # go
        started = time.monotonic()
        with trivial_trials(stamps := []):
            run_trials(exp, NoData(), study, storage=storage)
        results.put(("done", index, started, time.monotonic(), len(stamps)))


def _round(exp: Any, storage: str, study_name: str, n_workers: int, n_trials: int, queues: list[Any],
           results: Any) -> dict:
    from sweeps.driver._driver import storage_for
    from sweeps.study._study import open_study

    exp.cfg.sweep.storage, exp.cfg.sweep.study_name = storage, study_name
    open_study(exp, storage_for(exp))  # created once, as the parent of `sweep.n_workers` does
    for queue in queues[:n_workers]:
        queue.put((storage, study_name, n_trials))
    for _ in range(n_workers):
        assert results.get(timeout=600)[0] == "ready"
    go = time.monotonic()
    for queue in queues[:n_workers]:
        queue.put("go")
    done = [results.get(timeout=3600) for _ in range(n_workers)]
    end = max(d[3] for d in done)
    ran = sum(d[4] for d in done)
    return {"workers": n_workers, "trials": ran, "seconds": end - go, "trials_per_s": ran / (end - go)}


def measure(kind: str, storage: str, counts: list[int], n_trials: int, repeats: int, folder: Path) -> list[dict]:
    import optuna

    from sweeps.experiment._experiment import prepare

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, _ = prepare([*BASE, "sweep.storage=unused.journal"], probe=False)
    context = mp.get_context("spawn")
    queues = [context.Queue() for _ in range(max(counts))]
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(i, queues[i], results), daemon=True) for i in range(len(queues))]
    for process in workers:
        process.start()
    try:
        for _ in workers:
            assert results.get(timeout=900)[0] == "up"
        rounds = []
        for repeat in range(repeats):
            for n in counts:
                name = f"scaling-{n}w-{repeat}"
                target = str(folder / f"{name}.journal") if kind == "journal" else storage
                rounds.append(_round(exp, target, name, n, n_trials, queues, results))
        return rounds
    finally:
        for queue in queues:
            queue.put(None)
        for process in workers:
            process.join(timeout=60)


def _run_child(kind: str, storage: str, args: argparse.Namespace, folder: Path) -> list[dict]:
    out, log = folder / f"scaling-{kind}.json", folder / f"scaling-{kind}.log"
    command = [sys.executable, "-m", "benchmarks.storage_scaling", "--kind", kind, "--storage", storage,
               "--workers", args.scaling_workers, "--trials", str(args.scaling_trials), "--repeats",
               str(args.repeats), "--folder", str(folder), "--out", str(out)]
    with open(log, "w") as stream:
        done = subprocess.run(command, cwd=folder, env=env(), stdout=stream, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"storage scaling on {kind} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}")
    return json.loads(out.read_text())


def _storage(kind: str, folder: Path, database: str | None, stack: contextlib.ExitStack) -> str | None:
    if kind == "journal":
        return str(folder)
    if database is None:
        return None
    if kind == "grpc":
        return stack.enter_context(grpc_proxy(database, folder / "proxy.log"))
    return database


def section(args: argparse.Namespace, folder: Path) -> list[str]:
    """The harness section: trials/s by storage and worker count, and the speed-up over 1 worker."""
    counts = [int(n) for n in args.scaling_workers.split(",")]
    rows, missing = [], []
    for kind in KINDS:
        sub = folder / kind
        sub.mkdir()
        with contextlib.ExitStack() as stack:
            database = stack.enter_context(temp_postgres(args.postgres_url)) if kind != "journal" else None
            storage = _storage(kind, sub, database, stack)
            if storage is None:
                missing.append(LABELS[kind])
                continue
            rounds = _run_child(kind, storage, args, sub)
        single = [r["trials_per_s"] for r in rounds if r["workers"] == counts[0]]
        for n in counts:
            rates = [r["trials_per_s"] for r in rounds if r["workers"] == n]
            speedup = [rate / base for rate, base in zip(rates, single)]
            rows.append([LABELS[kind], n, *spread(rates, "{:.1f}"), *spread(speedup)])
    lines = [
        (f"Worker processes started once per storage (start-up and imports not timed); each round a fresh study, "
        f"{args.scaling_trials} trials of the quickstart space, random sampler, an objective that trains nothing, "
        f"through sweeps' real trial loop (`run_trials`: slots, heartbeats, counts, the duplicate check); worker "
        f"counts {args.scaling_workers} interleaved, {args.repeats} repeats. Trials/s = finished trials / wall from "
        f"the start signal to the last worker's end; speed-up against {counts[0]} worker(s) of the same repeat. "
        f"The gRPC proxy (`python -m sweeps.proxy`, 16 threads) runs on the same machine, and so does PostgreSQL: "
        f"with {counts[-1]} workers on a machine of few cores, the workers, the proxy and the database share them."),
        "",
    ]
    lines += table(["storage", "workers", "trials/s: min", "median", "max", "speed-up: min", "median", "max"], rows)
    if missing:
        lines += ["", f"Not measured: {', '.join(missing)} (no PostgreSQL server answered)."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--storage", required=True, help="the database or proxy URL; for journal, a folder")
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    rounds = measure(args.kind, args.storage, counts, args.trials, args.repeats, args.folder)
    args.out.write_text(json.dumps(rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
