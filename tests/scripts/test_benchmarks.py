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
    command = [sys.executable, "-m", "benchmarks", "--quick", "--skip", "hos,workers,threads,growth,scaling",
               "--out", str(out)]
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
def test_efficiency_tables_have_every_method_the_paper_and_a_plot(written):
    out, sections = written
    rows = sections["4. Sample efficiency at a fixed budget of epochs"]
    search = {r[0]: r for r in rows if len(r) == 7}  # without hydra-optuna-sweeper: no ratio columns
    shipped = {r[0]: r for r in rows if len(r) == 12}
    methods = {"sweeps (defaults)", "sweeps, select=off", "random search, no pruning", "plain Optuna TPE, no pruning"}
    assert set(search) == methods
    assert methods < set(shipped)
    assert shipped["reference: paper's CNN"][1] == "0.94"
    for method in methods:
        accuracies = [float(c) for c in search[method][4:7] + shipped[method][1:6]]
        assert all(0.0 <= a <= 1.0 for a in accuracies)
        assert shipped[method][6] == "2 of 2"  # --quick: two seeds, each shipped a tested configuration
    text = out.read_text()
    assert "Targets (issue 12)" in text and "--efficiency-experiment mnist1d_cnn" in text
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


def test_best_so_far_charges_selection_epochs_without_counting_their_values():
    from benchmarks.efficiency import best_so_far

    trials = [{"values": [0.5, 0.7], "epochs": 2, "phase": "search"},
              {"values": [0.9, 0.99], "epochs": 2, "phase": "select"}]  # a re-training: cost, not a find
    assert best_so_far(trials, budget=5) == [0.5, 0.7, 0.7, 0.7, 0.7]


def test_ratios_to_hos_mark_a_missed_seed_as_a_lower_bound():
    from benchmarks.efficiency import _ratios

    values, text = _ratios([(50, 100), (None, 200), (30, 30)], budget=300)
    assert values == [0.5, 1.5, 1.0]
    assert text == "0.50, >=1.50, 1.00"


def test_paired_rows_compare_sweeps_defaults_with_each_method_seed_by_seed():
    from benchmarks.efficiency import OURS, OURS_OFF, PLAIN, RANDOM, _paired

    def row(tests):
        return {"shipped": [None if t is None else {"test_accuracy": t} for t in tests]}

    measured = {OURS: row([0.95, 0.94, 0.96, 0.93, 0.95]),
                OURS_OFF: row([0.94, 0.93, 0.95, 0.92, 0.94]),   # 0.01 worse on every seed
                RANDOM: row([0.95, 0.94, 0.96, 0.93, 0.95]),     # the very same values
                PLAIN: row([0.96, None, 0.95, 0.94, None])}      # two seeds shipped nothing
    lines = _paired(measured)
    assert "below 2/2^n (0.0625 for 5)" in lines[0]
    rows = {r[0]: r[1:] for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    assert rows[OURS] == ["0.9500, 0.9400, 0.9600, 0.9300, 0.9500", "-", "-", "-"]
    assert rows[OURS_OFF][1:] == ["+0.0100", "5 / 0 / 0", "0.062"]  # the smallest p 5 pairs allow
    assert rows[RANDOM][1:] == ["+0.0000", "0 / 5 / 0", "1.000"]
    assert rows[PLAIN][0] == "0.9600, -, 0.9500, 0.9400, -"
    assert rows[PLAIN][1:3] == ["-0.0100", "1 / 0 / 2"]  # the 3 seeds both shipped: -0.01, +0.01, -0.01


def test_select_reserve_is_the_selections_most_epochs_and_zero_when_off():
    from omegaconf import OmegaConf

    from benchmarks._jobs import select_reserve

    on = OmegaConf.create({"select": {"enabled": True, "top_k": 5, "n_seeds": 2}})
    assert select_reserve(on, 40) == 400
    assert select_reserve(OmegaConf.create({"select": {"enabled": False, "top_k": 5, "n_seeds": 2}}), 40) == 0
    assert select_reserve(OmegaConf.create({}), 40) == 0


def test_hos_params_take_the_drawn_schedules_keys_under_sweeps_names():
    from omegaconf import OmegaConf

    from benchmarks.hos.app import params_of

    cfg = OmegaConf.create({"bench": {"seed": 0}, "optimizer": {"lr": 0.01, "weight_decay": 1e-5},
                            "trainer": {"averaging": "swa"},
                            "schedule": {"name": "step", "step_epochs": 7, "step_factor": 0.3, "cosine_warmup": 2}})
    assert params_of(cfg) == {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-5, "trainer.averaging": "swa",
                              "schedule": "step", "schedule[step].step_epochs": 7, "schedule[step].factor": 0.3}


def _sweeps_experiment(name: str, *overrides: str):
    from sweeps.config._compose import compose_experiment
    from sweeps.experiment._experiment import compile_experiment

    return compile_experiment(compose_experiment([f"+experiment={name}", *overrides]))


@pytest.mark.parametrize("name", ["mnist1d_cnn", "digits_cnn"])
def test_plain_optuna_suggests_sweeps_search_space(name):
    import optuna

    from benchmarks.plain_optuna import suggest

    exp = _sweeps_experiment(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(60):  # every schedule option is drawn
        trial = study.ask()
        suggest(trial, name, exp.cfg.trainer.max_epochs)
        seen.update(trial.distributions)
        study.tell(trial, 0.0)
    assert seen == exp.space.distributions()


@pytest.mark.parametrize("name", ["mnist1d_cnn", "digits_cnn"])
def test_recipe_fixes_what_the_experiment_fixes(name):
    from benchmarks.recipes import recipe

    cfg, r = _sweeps_experiment(name).cfg, recipe(name)
    assert (cfg.split.val_fraction, cfg.split.test_fraction, cfg.split.seed) == (r.val_fraction, r.test_fraction, 0)
    assert cfg.trainer.max_epochs == r.max_epochs and cfg.trainer.ema_decay == r.ema_decay
    assert cfg.trainer.batch_size == r.batch_size or "batch_size" in cfg.search.trainer
    assert cfg.search.schedule.options.cosine.warmup_epochs.high == r.cosine_warmup_high
    if name == "mnist1d_cnn":  # the samples recipes._mnist1d generates
        assert (cfg.data.num_samples, cfg.data.seed, cfg.data.final_seq_length,
                cfg.data.shuffle_seq) == (6000, 42, 40, False)


@pytest.mark.parametrize("params", [
    {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-4, "trainer.averaging": "ema", "schedule": "cosine",
     "schedule[cosine].warmup_epochs": 1},
    {"optimizer.lr": 0.003, "optimizer.weight_decay": 1e-6, "trainer.averaging": "swa", "schedule": "step",
     "schedule[step].step_epochs": 5, "schedule[step].factor": 0.5},
])
def test_recipe_trains_what_a_sweeps_trial_trains(params):
    """The baselines' training and a sweeps trial with the same parameters and seed give the same
    validation accuracy after every epoch: the same samples, split, model, optimizer, schedule and average."""
    from benchmarks import recipes
    from practices.data import train_val
    from sweeps.experiment._build import train

    cfg = _sweeps_experiment("mnist1d_cnn", "trainer.max_epochs=4").config(params)  # SWA averages epoch 4
    X, y, split = recipes.load("mnist1d_cnn")
    data = train_val(X, y, split)
    theirs, _ = train(cfg, data, seed=3)
    ours, _ = recipes.train("mnist1d_cnn", params, data, seed=3, max_epochs=4)
    assert [e.val_accuracy for e in theirs.history] == [e.val_accuracy for e in ours.history]


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


def test_efficiency_methods_and_variants_choose_the_rows_and_their_overrides(tmp_path):
    from benchmarks.__main__ import _args
    from benchmarks.efficiency import HOS, OURS, _sweep_job, methods_of

    args = _args(["--efficiency-methods", "hos", "--efficiency-variant", "sweep.pruner_warmup_epochs=20 select=off",
                  "--efficiency-variant", "monitor.patience=null"])
    variant = "sweeps, sweep.pruner_warmup_epochs=20 select=off"
    assert methods_of(args, Path("python")) == {
        OURS: [], HOS: [], variant: ["sweep.pruner_warmup_epochs=20", "select=off"],
        "sweeps, monitor.patience=null": ["monitor.patience=null"]}
    assert HOS not in methods_of(args, None)
    assert "hos" not in args.skip, "the sweeper runs when asked for"
    job = _sweep_job(variant, 3, args, tmp_path, ("sweep.pruner_warmup_epochs=20", "select=off"), slug="variant0")
    assert job["overrides"][-2:] == ["sweep.pruner_warmup_epochs=20", "select=off"], "a variant's values win"
    assert job["folder"] == str(tmp_path / "variant0-3") and "sweep.seed=3" in job["overrides"]
    assert "hos" in _args(["--efficiency-methods", "random"]).skip, "no sweeper environment when it is not compared"
    for bad in (["--efficiency-methods", "grid"], ["--efficiency-variant", "select"], ["--efficiency-variant", ""]):
        with pytest.raises(SystemExit):
            _args(bad)


def test_threads_section_runs_each_setting_per_repeat_in_rotated_order(tmp_path, monkeypatch):
    import argparse

    from benchmarks import perf

    monkeypatch.setattr("sweeps.experiment._threads.available_cores", lambda: 4)
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


def test_skipped_sections_keep_what_the_file_measured_before_and_say_when(tmp_path):
    from benchmarks.__main__ import _earlier_sections

    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nRun at 2026-01-02 03:04 UTC on vm: 2 CPU cores, commit abc1234.\n\n"
                   "## 1. A\n\nmeasured a\n\n| x |\n\n## 2. B\n\nSkipped in this run (--skip b).\n\n"
                   "## 3. C\n\n_Not rerun in this run: kept from the run of 2025-12-31 00:00 UTC, commit 0ld of this "
                   "file._\n\nmeasured c\n")
    kept = _earlier_sections(out)
    assert kept["1. A"] == ["_Not rerun in this run: kept from the run of 2026-01-02 03:04 UTC, commit abc1234 of "
                            "this file._", "", "measured a", "", "| x |"]
    assert "2. B" not in kept  # nothing measured there to keep
    assert kept["3. C"][0].startswith("_Not rerun in this run: kept from the run of 2025-12-31")  # not re-dated
    assert _earlier_sections(tmp_path / "absent.md") == {}


def test_the_hand_written_summary_is_kept_by_a_run(tmp_path):
    from benchmarks.__main__ import SUMMARY_BEGIN, SUMMARY_END, _earlier_summary

    out = tmp_path / "benchmarks.md"
    out.write_text(f"# Benchmarks\n\nRun at x.\n\n{SUMMARY_BEGIN}\n**Where targets stand.** 0.9x\n{SUMMARY_END}\n\n"
                   "## 1. A\n\nmeasured a\n")
    assert _earlier_summary(out) == [SUMMARY_BEGIN, "**Where targets stand.** 0.9x", SUMMARY_END, ""]
    out.write_text("# Benchmarks\n\n## 1. A\n")
    assert _earlier_summary(out) == []
    assert _earlier_summary(tmp_path / "absent.md") == []
