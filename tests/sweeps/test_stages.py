"""Staged sweeps: SGD with momentum, then Adam seeded from its best; one vault opening."""

import optuna
import pandas as pd
import pytest
import yaml

from sweeps.__main__ import main
from sweeps._errors import ConfigError
from sweeps.experiment._stage_plan import narrowed, parse_stages, translated_lr
from sweeps.study import _records
from sweeps.vault._state import Vault

pytestmark = pytest.mark.slow
TINY = ["+experiment=digits_staged", "trainer.max_epochs=1", "stages.0.n_trials=3", "stages.1.n_trials=2",
        "sweep.pruner=none", "stages.0.search.schedule.options.cosine.warmup_epochs.high=0"]


def _study(name):
    return optuna.load_study(study_name=name, storage="sqlite:///sweeps.db")


def test_stages_run_in_turn_and_stage_two_starts_from_stage_one(in_tmp):
    assert main(TINY) == 0
    sgd, adam = _study("digits_staged.sgd"), _study("digits_staged.adam")
    assert len(sgd.trials) == 3 and len(adam.trials) == 2
    best = sgd.best_trial
    # stage 2 searches only Adam's learning rate: stage 1's keys are fixed in its config
    assert set(adam.trials[0].distributions) == {"optimizer.lr"}
    base = _records.read(adam, "experiment")["base"]
    assert base["optimizer"]["_target_"] == "practices.optimizers.adam"
    assert base["trainer"]["batch_size"] == best.params["trainer.batch_size"]
    assert _records.read(adam, "experiment")["choices"]["schedule"] == best.params["schedule"]
    first = adam.trials[0]
    assert first.user_attrs["enqueued_from"] == f"digits_staged.sgd#{best.number}"
    assert first.params["optimizer.lr"] == pytest.approx(translated_lr(best.params, 0.02, 1e-4, 0.03))
    assert adam.user_attrs["previous_stage"] == "digits_staged.sgd"
    table = pd.read_csv(in_tmp / "exports/digits_staged/stages.csv")
    assert list(table["stage"]) == ["sgd", "adam"] and list(table["n_trials"]) == [3, 2]
    assert table["best_value"].tolist() == pytest.approx([sgd.best_value, adam.best_value])
    exported = yaml.safe_load((in_tmp / "exports/digits_staged/best.yaml").read_text())
    winner = exported["provenance"]["stages"]["winner"]
    assert winner == ("adam" if adam.best_value > sgd.best_value else "sgd")


def test_vault_opens_once_for_the_whole_staged_experiment(in_tmp, capsys):
    assert main(TINY) == 0
    out = capsys.readouterr().out
    assert "vault.auto_open=false" not in out, "nobody set it"
    assert out.count("test vault stays sealed: staged experiment 'digits_staged' opens it once, after its last "
                     "stage, for the overall winner") == 2
    claims = sum(len(Vault(_study(f"digits_staged.{s}")).claims()) for s in ("sgd", "adam"))
    assert claims == 1
    assert (in_tmp / "exports/digits_staged/test_result.json").exists()
    from optuna_dashboard import get_note

    notes = {s: get_note(_study(f"digits_staged.{s}")) for s in ("sgd", "adam")}
    assert all("# Stage comparison" in note and "Overall winner" in note for note in notes.values())
    assert any("## Test vault" in note and "**Opened**" in note for note in notes.values()), \
        "the winner's note keeps the vault's result beside the comparison"
    capsys.readouterr()
    assert main(TINY) == 0
    assert "test vault already opened for this staged experiment" in capsys.readouterr().out
    assert sum(len(Vault(_study(f"digits_staged.{s}")).claims()) for s in ("sgd", "adam")) == 1


def test_vault_commands_understand_a_staged_experiment(in_tmp, capsys):
    import sweeps.vault.__main__ as vault_cli

    optuna.create_study(study_name="other", storage="sqlite:///sweeps.db")
    assert vault_cli.main(["status", *TINY]) == 2
    assert "no study of staged experiment 'digits_staged'" in capsys.readouterr().err
    assert main([*TINY, "sweep.stage=sgd"]) == 0
    capsys.readouterr()
    assert vault_cli.main(["status", *TINY]) == 0
    out = capsys.readouterr().out
    assert "stage sgd: study 'digits_staged.sgd', 3 of 3 trials finished, best val_accuracy=" in out
    assert "stage adam: study digits_staged.adam not started" in out and "vault: sealed; it opens once" in out
    assert vault_cli.main(["open", *TINY]) == 2
    assert "stage 'adam' has no completed trial yet" in capsys.readouterr().err
    assert main([*TINY, "vault.auto_open=false"]) == 0
    assert "test vault stays sealed (vault.auto_open=false); open it with: python -m sweeps.vault open" in \
        capsys.readouterr().out
    assert vault_cli.main(["open", *TINY]) == 0
    out = capsys.readouterr().out
    assert "test vault opened: test_accuracy=" in out
    assert sum(len(Vault(_study(f"digits_staged.{s}")).claims()) for s in ("sgd", "adam")) == 1
    assert ({"best.yaml", "stages.csv", "test_result.json"}
            <= {p.name for p in (in_tmp / "exports/digits_staged").iterdir()})
    assert vault_cli.main(["status", *TINY]) == 0
    out = capsys.readouterr().out
    assert "(opened):" in out and "vault: opened" in out
    assert vault_cli.main(["open", *TINY]) == 2
    assert "A second opening is refused" in capsys.readouterr().err


def test_resume_after_stage_one_goes_on_with_stage_two(in_tmp):
    assert main([*TINY, "sweep.stage=sgd"]) == 0
    assert len(_study("digits_staged.sgd").trials) == 3
    with pytest.raises(KeyError):
        _study("digits_staged.adam")
    assert main(TINY) == 0
    assert len(_study("digits_staged.sgd").trials) == 3, "stage 1 is complete: no new trials"
    assert len(_study("digits_staged.adam").trials) == 2


def test_stage_two_alone_before_stage_one_is_refused(in_tmp, capsys):
    assert main([*TINY, "sweep.stage=adam"]) == 2
    assert "stage 'sgd' has no completed trial yet" in capsys.readouterr().err


def test_lr_range_test_sets_and_records_the_first_stage_bounds(in_tmp):
    assert main([*TINY, "lr_range_test=true", "stages.1.n_trials=1"]) == 0
    sgd = _study("digits_staged.sgd")
    bounds = sgd.user_attrs["lr_range"]
    dist = sgd.trials[0].distributions["optimizer.lr"]
    assert (dist.low, dist.high) == pytest.approx((bounds["low"], bounds["high"]))
    assert 0 < bounds["low"] < bounds["high"] <= bounds["min_loss_lr"]
    assert "lr_range_plot" in sgd.user_attrs
    assert main([*TINY, "lr_range_test=true", "stages.1.n_trials=1"]) == 0, "resume reuses the recorded bounds"


def test_narrowed_spec_stays_inside_the_original_range():
    spec = {"type": "float", "low": 0.001, "high": 0.5, "log": True}
    assert narrowed(spec, 0.4) == {**spec, "low": 0.2, "high": 0.5}
    linear = narrowed({"type": "float", "low": 0.0, "high": 1.0}, 0.05)
    assert linear["low"] == 0.0 and linear["high"] == pytest.approx(0.15)
    assert narrowed({"type": "int", "low": 2, "high": 8}, 5) == {"type": "int", "low": 4, "high": 6}
    assert narrowed({"type": "categorical", "choices": [1, 2]}, 1) is None


@pytest.mark.parametrize("stages,message", [
    ([], "stages must be a non-empty list"),
    ([{"name": "a"}], "stages[0].n_trials must be an int >= 1"),
    ([{"name": "a", "n_trials": 2}, {"name": "a", "n_trials": 2}], "stages[1].name must be a unique"),
    ([{"name": "a", "n_trials": 2, "carry": "loose"}], "stages[0].carry must be one of ['fixed', 'narrow']"),
    ([{"name": "a", "n_trials": 2, "bogus": 1}], "stages[0]: unknown keys ['bogus']"),
])
def test_parse_stages_names_the_bad_key(stages, message):
    with pytest.raises(ConfigError) as info:
        parse_stages(stages)
    assert message in str(info.value)
