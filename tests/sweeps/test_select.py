"""Seed-robust selection (sweeps/study/_select.py, docs/select.md), end to end on tiny sweeps (blobs, an MLP of
width 8, 2 epochs) in a temporary folder. Where the ranking itself is under test, the trial values are
planted per configuration and seed (the objective's training step is replaced in-process)."""

import contextlib
import io
import json
import signal
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState
from optuna_dashboard import get_note
from scipy import stats

from sweeps.__main__ import main
from sweeps._interrupt import Interrupted
from sweeps.storage._url import open_storage
from sweeps.study import _records, _select, _stats
from sweeps.study._result import result_value
from sweeps.trial import _objective
from tests.helpers import subprocess_env

SMALL = ["data._target_=tests.helpers.blobs", "model=mlp", "model.width=8", "model.depth=1", "trainer.max_epochs=2",
         "trainer.batch_size=32", "trainer.num_threads=1", "sweep.n_trials=4", "sweep.sampler=random",
         "sweep.pruner=none", "+search.optimizer.lr={type:float,low:0.001,high:0.2,log:true}",
         "preflight=off", "select.top_k=2", "select.n_seeds=2"]
STORAGE = "sqlite:///sweeps.db"
# Planted values: trial 0 is lucky (best single run, poor on other seeds), trial 1 robust, 2 and 3 poor.
MAIN = {0: 0.90, 1: 0.80, 2: 0.50, 3: 0.40}
EXTRA = {(0, 1): 0.60, (0, 2): 0.55, (1, 1): 0.79, (1, 2): 0.81}


def _study(name="sweeps") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=STORAGE)


def _names() -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(STORAGE))


class Planted:
    """Replaces the training of a trial by its planted value; records each call."""

    def __init__(self, interrupt_at=None):
        self.calls = []
        self.interrupt_at = interrupt_at  # (source, seed_index) of a linked trial to interrupt once

    def __call__(self, objective, trial, cfg, seed, monitor):
        attrs = trial.user_attrs
        key = (attrs["select.source"], attrs["select.seed_index"]) if "select.source" in attrs else trial.number
        self.calls.append(key)
        if key == self.interrupt_at:
            self.interrupt_at = None
            raise Interrupted(signal.SIGINT)
        trial.set_user_attr("best_epoch", 1)
        trial.set_user_attr("end_reason", "completed")
        return EXTRA[key] if isinstance(key, tuple) else MAIN[key]


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """One planted sweep for the module: its folder, the fake training and what the command printed."""
    folder = tmp_path_factory.mktemp("planted")
    fake = Planted()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(_objective.Objective, "_train", lambda self, *a: fake(self, *a))
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main([*SMALL, "monitor=off"]) == 0
    return folder, fake, out.getvalue()


@pytest.fixture
def planted(planted_run, monkeypatch):
    folder, fake, out = planted_run
    monkeypatch.chdir(folder)
    monkeypatch.setattr(_objective.Objective, "_train", lambda self, *a: fake(self, *a))
    return fake, out


def test_select_linked_study_holds_top_k_times_n_seeds_trials_with_params_and_seeds(in_tmp, capsys):
    assert main(SMALL) == 0
    study, linked = _study(), _study("sweeps.select")
    top = _select.top_configurations(study, 2)
    assert [t.number for t in top] == [t.number for t in sorted(
        study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: (-t.value, t.number))[:2]]
    trials = linked.get_trials()
    assert len(trials) == 2 * 2 and all(t.state == TrialState.COMPLETE for t in trials)
    pairs = {(t.user_attrs["select.source"], t.user_attrs["select.seed_index"]) for t in trials}
    assert pairs == {(t.number, j) for t in top for j in (1, 2)}
    by_number = {t.number: t for t in study.trials}
    for t in trials:
        assert t.params == by_number[t.user_attrs["select.source"]].params
        assert t.user_attrs["seed"] == _select.extra_seed(0, t.user_attrs["select.seed_index"])
    assert linked.user_attrs["select.of"] == "sweeps" and linked.metric_names == ["val_accuracy"]
    assert len(study.trials) == 4, "the main study holds its n_trials, no more"
    assert "select [4/4]" in capsys.readouterr().out


def test_select_ranks_by_median_and_picks_the_robust_config_over_the_lucky_one(planted):
    fake, out = planted
    study = _study()
    assert study.best_trial.number == 0, "the lucky run has the best single value"
    result = _records.read(study, "select.result")
    assert result["winner"] == 1 and result["best_trial"] == 0
    assert [r["trial"] for r in result["rows"]] == [1, 0]
    assert [r["median"] for r in result["rows"]] == [pytest.approx(0.80), pytest.approx(0.60)]
    assert "select: winner trial 1" in out
    assert sorted(k for k in fake.calls if isinstance(k, tuple)) == sorted(EXTRA), "each extra seed trained once"


def test_select_vault_and_best_yaml_use_the_winner(planted, planted_run):
    folder = planted_run[0]
    study = _study()
    winner = study.trials[1]
    vault = _records.read(study, "vault.result")
    assert vault["trial"] == 1 and vault["seed"] == winner.user_attrs["seed"] and vault["val_value"] == 0.80
    assert vault["selection"]["median"] == pytest.approx(0.80) and vault["selection"]["best_single_run_trial"] == 0
    best = yaml.safe_load((folder / "exports/sweeps/best.yaml").read_text())
    assert best["optimizer"]["lr"] == winner.params["optimizer.lr"]
    prov = best["provenance"]
    assert prov["trial"] == 1 and prov["value"] == 0.80 and prov["seed"] == winner.user_attrs["seed"]
    assert prov["selection"]["seeds"] == [winner.user_attrs["seed"], _select.extra_seed(0, 1), _select.extra_seed(0, 2)]
    assert prov["selection"]["values"] == [0.80, 0.79, 0.81] and prov["selection"]["median"] == pytest.approx(0.80)
    assert "Seed-robust winner" in (folder / "exports/sweeps/best.yaml").read_text().splitlines()[3]


def test_select_csv_columns_values_and_p_values_equal_scipys(planted, planted_run):
    folder = planted_run[0]
    table = pd.read_csv(folder / "exports/sweeps/selection.csv")
    assert list(table.columns) == ["rank", "trial", "rank_by_value", "params_optimizer.lr", "seed_0", "seed_1",
                                   "seed_2", "value_0", "value_1", "value_2", "median", "n_pairs", "effect",
                                   "p_wilcoxon", "p_mannwhitney", "winner"]
    assert table["trial"].tolist() == [1, 0] and table["rank"].tolist() == [1, 2]
    assert table["rank_by_value"].tolist() == [2, 1] and table["winner"].tolist() == [True, False]
    assert table.loc[0, ["value_0", "value_1", "value_2"]].tolist() == [0.80, 0.79, 0.81]
    assert table.loc[1, ["value_0", "value_1", "value_2"]].tolist() == [0.90, 0.60, 0.55]
    assert table["median"].tolist() == pytest.approx([0.80, 0.60])
    runner = table.loc[1]
    winner_values, runner_values = [0.80, 0.79, 0.81], [0.90, 0.60, 0.55]
    assert runner["n_pairs"] == 3
    assert runner["effect"] == pytest.approx(np.median(np.subtract(winner_values, runner_values)))  # 0.19
    assert runner["p_wilcoxon"] == pytest.approx(stats.wilcoxon(winner_values, runner_values).pvalue)
    assert runner["p_wilcoxon"] == pytest.approx(0.5)
    assert runner["p_mannwhitney"] == pytest.approx(
        stats.mannwhitneyu(winner_values, runner_values, alternative="two-sided").pvalue)
    assert pd.isna(table.loc[0, "p_wilcoxon"]), "the winner is not tested against itself"


def test_select_note_has_the_section_with_escaped_user_text(planted):
    note = get_note(_study())
    assert "## Test vault" in note and "## Seed-robust selection" in note
    assert "Winner: trial **1**" in note and "smallest two-sided Wilcoxon p-value is 0.25" in note
    assert "optimizer\\.lr=" in note
    escaped = _select.md_escape("[click](http://x.example) <img src=x> a|b")
    assert "](" not in escaped.replace("\\]\\(", "") and "<img" not in escaped and "|" not in escaped.replace("\\|", "")


def test_select_rerun_trains_nothing_and_keeps_the_result(planted, capsys):
    fake, _ = planted
    before = _records.read(_study(), "select.result")
    n_calls = len(fake.calls)
    assert main([*SMALL, "monitor=off"]) == 0
    assert len(fake.calls) == n_calls
    assert _records.read(_study(), "select.result") == before
    assert "select" not in capsys.readouterr().out.replace("selection", ""), "the vault's winner stands"
    assert main([*SMALL, "monitor=off", "select.top_k=3"]) == 0
    assert len(fake.calls) == n_calls and _records.read(_study(), "select.result") == before
    assert "select: the test vault was opened after selecting with select.top_k=2" in capsys.readouterr().out


def test_select_resumes_after_interruption_without_repeating_finished_seeds(in_tmp, monkeypatch, capsys):
    fake = Planted(interrupt_at=(1, 1))
    monkeypatch.setattr(_objective.Objective, "_train", lambda self, *a: fake(self, *a))
    assert main([*SMALL, "monitor=off"]) == 130
    assert "interrupted by SIGINT" in capsys.readouterr().out
    assert _records.read(_study(), "vault.result") is None and _records.read(_study(), "select.result") is None
    first = [k for k in fake.calls if isinstance(k, tuple)]
    assert first[-1] == (1, 1)
    fake.calls.clear()
    assert main([*SMALL, "monitor=off"]) == 0
    again = [k for k in fake.calls if isinstance(k, tuple)]
    assert sorted(again) == sorted(set(EXTRA) - set(first[:-1])), "only the interrupted and missing seeds run"
    linked = _study("sweeps.select")
    complete = linked.get_trials(states=(TrialState.COMPLETE,))
    assert sorted((t.user_attrs["select.source"], t.user_attrs["select.seed_index"]) for t in complete) == sorted(EXTRA)
    assert (_records.read(_study(), "select.result")["winner"] == 1
            and _records.read(_study(), "vault.result")["trial"] == 1)


def test_select_off_leaves_no_linked_study_and_the_best_trial_wins(in_tmp, capsys):
    assert main([*SMALL, "select=off"]) == 0
    study = _study()
    assert _names() == ["sweeps"]  # the vault's claim is a record of the study (no helper study)
    assert _records.read(study, "select.result") is None
    assert _records.read(study, "vault.result")["trial"] == study.best_trial.number
    assert "selection" not in _records.read(study, "vault.result")
    assert not (in_tmp / "exports/sweeps/selection.csv").exists()
    best = yaml.safe_load((in_tmp / "exports/sweeps/best.yaml").read_text())
    assert best["provenance"]["trial"] == study.best_trial.number and best["provenance"]["selection"] is None
    assert "select" not in capsys.readouterr().out.replace("selection", "")


def test_select_test_result_json_has_a_bootstrap_ci_around_the_point_estimate(planted, planted_run):
    folder = planted_run[0]
    result = json.loads((folder / "exports/sweeps/test_result.json").read_text())["result"]
    ci = result["test_ci"]
    assert ci["confidence"] == 0.95 and ci["n_resamples"] == 2000
    for metric in ("test_accuracy", "test_loss"):
        low, high = ci[metric]
        assert low <= result["test"][metric] <= high and low < high


def test_select_extending_the_study_enqueues_only_new_pairs(in_tmp, capsys):
    manual = [*SMALL, "vault.auto_open=false", "sweep.n_trials=3"]
    assert main(manual) == 0
    linked = _study("sweeps.select")
    assert len(linked.trials) == 4
    assert main([*manual[:-1], "sweep.n_trials=5", "select.n_seeds=3"]) == 0
    rounds = linked.user_attrs["select.rounds"]
    assert len(rounds) == 2 and len({tuple(p) for r in rounds for p in r["pairs"]}) == len(linked.trials)
    assert _names() == ["sweeps", "sweeps.select"], "round 2's claim study is gone once the round is recorded"
    top = _select.top_configurations(_study(), 2)
    done = {(t.user_attrs["select.source"], t.user_attrs["select.seed_index"]) for t in linked.trials}
    assert {(t.number, j) for t in top for j in (1, 2, 3)} <= done
    result = _records.read(_study(), "select.result")
    assert result["n_finished"] == 5 and all(len(r["values"]) == 4 for r in result["rows"])
    assert (in_tmp / "exports/sweeps/selection.csv").exists()
    capsys.readouterr()
    assert main([*manual[:-1], "sweep.n_trials=5", "select=off"]) == 0
    assert "the recorded seed-robust selection is set aside" in capsys.readouterr().out
    assert _records.read(_study(), "select.result") is None and not (in_tmp / "exports/sweeps/selection.csv").exists()
    best = yaml.safe_load((in_tmp / "exports/sweeps/best.yaml").read_text())
    assert best["provenance"]["trial"] == _study().best_trial.number and best["provenance"]["selection"] is None


def test_stats_compare_matches_scipy_and_handles_ties_and_missing_values():
    a, b = [0.9, 0.7, 0.85, 0.8], [0.8, 0.75, 0.6, 0.7]
    c = _stats.compare(a, b, maximize=True)
    assert c.p_wilcoxon == stats.wilcoxon(a, b).pvalue and c.n_pairs == 4
    assert c.p_mannwhitney == stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    assert c.effect == pytest.approx(np.median(np.subtract(a, b)))
    assert _stats.compare(a, b, maximize=False).effect == pytest.approx(-c.effect)
    assert _stats.compare([0.5, 0.6], [0.5, 0.6], maximize=True).p_wilcoxon == 1.0
    missing = _stats.compare([0.9, None, 0.8], [0.7, 0.6, None], maximize=True)
    assert missing.n_pairs == 1 and missing.effect == pytest.approx(0.2)
    assert _stats.median_or_worst([0.9, None, None], maximize=True) == -np.inf
    assert _stats.median_or_worst([0.2, None, 0.1], maximize=False) == 0.2


@pytest.mark.slow
def test_select_with_two_workers_trains_each_seed_once(in_tmp):
    command = [sys.executable, "-m", "sweeps", *SMALL, "sweep.n_workers=2", "sweep.storage=sweeps.journal"]
    proc = subprocess.run(command, check=False, cwd=in_tmp, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "select [" in proc.stdout and "select: winner trial" in proc.stdout
    storage = open_storage(str(in_tmp / "sweeps.journal"))
    linked = optuna.load_study(study_name="sweeps.select", storage=storage)
    ran = [t for t in linked.trials if t.state == TrialState.COMPLETE or t.intermediate_values]
    pairs = [(t.user_attrs["select.source"], t.user_attrs["select.seed_index"]) for t in ran]
    top = _select.top_configurations(optuna.load_study(study_name="sweeps", storage=storage), 2)
    assert sorted(pairs) == sorted((t.number, j) for t in top for j in (1, 2)), "each pair trained exactly once"
    assert all(t.state == TrialState.COMPLETE for t in ran)
    assert (in_tmp / "exports/sweeps/selection.csv").exists()


def test_select_checkpoint_final_model_is_the_checkpoint_of_the_winners_median_run(in_tmp, capsys):
    assert main([*SMALL, "vault.final_model=checkpoint"]) == 0
    study = _study()
    vault = _records.read(study, "vault.result")
    run = vault["selection"]["final_run"]
    trial = _study(run["study"]).trials[run["trial"]]
    assert vault["trial"] == _records.read(study, "select.result")["winner"]
    assert vault["final_model"] == "checkpoint" and vault["artifact_id"] == result_value(trial, "best_checkpoint")
    assert vault["seed"] == trial.user_attrs["seed"] == run["seed"] and vault["val_value"] == trial.value
    values = vault["selection"]["values"]
    assert (abs(run["value"] - vault["selection"]["median"])
            == min(abs(v - vault["selection"]["median"]) for v in values))


def test_select_is_off_in_staged_experiments_with_a_notice(capsys):
    import types

    from sweeps.config._compose import compose_experiment

    exp = types.SimpleNamespace(cfg=compose_experiment(["+experiment=digits_staged"]).cfg)
    assert _select.due(exp, None, lambda: False, print) is False, "decided before any study is read"
    assert "select: off in staged experiments" in capsys.readouterr().out


@pytest.mark.slow
def test_select_two_commands_on_one_storage_queue_the_retrainings_once(in_tmp):
    # The tables first: two commands creating an SQLite file's schema at once can collide in Alembic.
    open_storage(STORAGE)
    command = [sys.executable, "-m", "sweeps", *SMALL]
    procs = [subprocess.Popen(command, cwd=in_tmp, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("select: re-training the top 2" in out for out, _ in outputs) == 1, "one command queues them"
    linked = _study("sweeps.select")
    assert linked.user_attrs["select.rounds"][0]["pairs"] and len(linked.user_attrs["select.rounds"]) == 1
    ran = [t for t in linked.trials if t.state == TrialState.COMPLETE or t.intermediate_values]
    pairs = sorted((t.user_attrs["select.source"], t.user_attrs["select.seed_index"]) for t in ran)
    top = _select.top_configurations(_study(), 2)
    assert pairs == sorted((t.number, j) for t in top for j in (1, 2)), "each pair trained exactly once"
    assert _names() == ["sweeps", "sweeps.select"]
