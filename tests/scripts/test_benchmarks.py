"""Smoke test of the benchmark harness (python -m benchmarks) on its --quick budget.

It checks that the harness runs and writes its tables, with the expected rows and numbers; it
asserts nothing about speed (the figures of a --quick run mean nothing).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parent.parent.parent


def _sections(text: str) -> dict[str, list[list[str]]]:
    """Section title -> the body rows of its Markdown tables, as cells."""
    out: dict[str, list[list[str]]] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        elif line.startswith("| ") and title:
            out[title].append([c.strip() for c in line.strip("|").split("|")])
    headers = {"figure", "loop", "method", "baseline", "preflight"}
    return {t: [r for r in rows if r[0] not in headers] for t, rows in out.items()}


def _numbers(row: list[str]) -> list[float]:
    return [float(c) for c in row[1:]]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict[str, list[list[str]]]]:
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    # The storage sections have their own smoke test (test_storage_benchmarks.py).
    command = [sys.executable, "-m", "benchmarks", "--quick", "--skip", "hos,workers,threads,growth,scaling", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, _sections(out.read_text())


@pytest.mark.slow
def test_overhead_table_has_every_figure_as_numbers(written):
    _, sections = written
    rows = {r[0]: _numbers(r) for r in sections["1. Driver overhead"]}
    assert "ratio sweeps / bare (per repeat)" in rows
    assert "sweeps: per-trial overhead (ms)" in rows and "bare Optuna loop: per-trial overhead (ms)" in rows
    for values in rows.values():
        low, median, high = values
        assert low <= median <= high
    assert 0 < rows["sweeps: whole run outside trial training (fraction of wall)"][1] < 1


@pytest.mark.slow
def test_throughput_table_compares_loops_to_the_hand_loop(written):
    _, sections = written
    rows = {r[0]: r for r in sections["2. Trainer throughput"]}
    assert {"hand-written loop", "practices.train.fit"} <= set(rows)
    assert any(name.startswith("sweeps trial") for name in rows)
    assert _numbers(rows["hand-written loop"])[3:] == [1.0, 1.0, 1.0]  # the reference's own ratio
    assert all(v > 0 for r in rows.values() for v in _numbers(r))


@pytest.mark.slow
def test_efficiency_table_has_both_methods_and_a_plot(written):
    out, sections = written
    table = sections["4. Sample efficiency at a fixed budget of epochs"]
    methods: dict[str, list[str]] = {}
    for row in table:  # the first table has the methods; the ratio table after it repeats the baselines
        methods.setdefault(row[0], row)
    assert {"sweeps (defaults)", "random search, no pruning"} <= set(methods)
    for row in (methods["sweeps (defaults)"], methods["random search, no pruning"]):
        accuracies = [float(c) for c in row[1:4]]
        assert all(0.0 <= a <= 1.0 for a in accuracies)
        assert row[7].endswith("of 3")  # three seeds
    assert (out.parent / "benchmarks_efficiency.png").stat().st_size > 1000


@pytest.mark.slow
def test_skipped_and_missing_sections_say_so(written):
    out, _ = written
    text = out.read_text()
    assert "Skipped in this run (--skip workers)." in text
    assert "hydra-optuna-sweeper: skipped in this run (--skip hos)." in text
    assert "## 3. Preflight cost" in text


def test_best_so_far_counts_every_epoch_and_cuts_at_the_budget():
    from benchmarks.efficiency import best_so_far, epochs_to

    trials = [{"values": [0.5, 0.7], "epochs": 2},       # a full trial
              {"values": [0.6], "epochs": 1},            # pruned after one epoch
              {"values": [0.8], "epochs": 2},            # diverged in its second epoch: counted, no value
              {"values": [0.9, 0.95, 0.99], "epochs": 3}]
    curve = best_so_far(trials, budget=7)
    assert curve == [0.5, 0.7, 0.7, 0.8, 0.8, 0.9, 0.95]
    assert epochs_to(curve, 0.8) == 4
    assert epochs_to(curve, 0.99) is None  # reached only after the budget
    assert best_so_far(trials[:1], budget=4) == [0.5, 0.7, 0.7, 0.7]  # a shorter run keeps its best


def test_ratio_marks_a_baseline_that_missed_the_target_as_a_lower_bound():
    from benchmarks.efficiency import _ratio_row

    row = _ratio_row("random", theirs=[100, None, 50], ours=[50, 100, None], budget=300)
    assert row == ["random", "2.00", "2.50", "3.00", "2.00, >=3.00, sweeps missed"]


def test_spread_is_min_median_max():
    from benchmarks._tables import spread

    assert spread([3.0, 1.0, 2.0, 10.0], "{:.1f}") == ["1.0", "2.5", "10.0"]
    assert spread([]) == ["-", "-", "-"]


def test_only_skips_every_other_section():
    from benchmarks.__main__ import SECTIONS, _args

    assert _args(["--only", "threads"]).skip == set(SECTIONS) - {"threads"}
    assert _args(["--only", "efficiency"]).skip == set(SECTIONS) - {"efficiency", "hos"}  # hos is part of it
    with pytest.raises(SystemExit):
        _args(["--only", "nonsense"])


def test_threads_section_runs_each_setting_per_repeat_in_rotated_order(tmp_path, monkeypatch):
    import argparse

    from benchmarks import perf

    monkeypatch.setattr("sweeps._threads.available_cores", lambda: 4)
    variants = perf._variants()
    assert list(variants.values()) == ["null", "1", "4"]
    args = argparse.Namespace(repeats=2, threads_trials=3, threads_epochs=12)
    jobs = perf._jobs(args, tmp_path, variants)
    assert jobs[0]["label"] == "warm-up"
    labels = [j["label"] for j in jobs[1:]]
    assert labels == [*variants, *list(variants)[1:], list(variants)[0]]
    for job in jobs[1:]:
        assert f"trainer.num_threads={variants[job['label']]}" in job["overrides"]
        assert "sweep.n_trials=3" in job["overrides"]


def test_bench_cuda_without_cuda_says_so_in_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the script measures instead")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_cuda
    finally:
        sys.path.pop(0)
    assert bench_cuda.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("bench_cuda: no CUDA device here")
