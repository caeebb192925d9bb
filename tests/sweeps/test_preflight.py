"""Preflight in sweeps: per-trial checks, the per-architecture cache, early stop, config, CLI."""

import optuna
import pytest
from optuna.trial import TrialState
from optuna_dashboard import get_note

import sweeps.trial._preflight as preflight_module
from sweeps import preflight as preflight_cli
from sweeps.__main__ import main
from sweeps.storage import trial_id

BLOBS = ["data._target_=tests.helpers.blobs", "trainer.max_epochs=1", "sweep.sampler=random"]
BROKEN = ["model._target_=tests.helpers.BrokenBackward"]
LR = "+search.optimizer.lr={type:float,low:0.01,high:0.1}"


def _study():
    return optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")


def _note(study, trial):
    return get_note(optuna.Trial(study, trial_id(study, trial)))  # a Trial: get_note takes no FrozenTrial


def test_preflight_broken_backward_of_fixed_architecture_stops_after_first_trial(in_tmp, capsys):
    code = main([*BLOBS, *BROKEN, LR, "sweep.n_trials=5"])
    assert code == 3
    out = capsys.readouterr().out
    study = _study()
    trials = study.get_trials()
    assert len(trials) == 1 and trials[0].state == TrialState.FAIL
    attrs = trials[0].user_attrs
    assert attrs["preflight"]["gradient"]["passed"] is False
    assert attrs["preflight"]["gradient"]["value"] == pytest.approx(2.0, rel=1e-3)  # a flipped sign: |-g - g| / |g|
    assert attrs["preflight"]["gradient"]["threshold"] == 1e-4
    assert attrs["preflight.unfixable"] is True
    assert attrs["fail_reason"].startswith("preflight: gradient check FAILED: 2 at hidden_weight")
    assert "backward" in attrs["fail_reason"]
    assert "stopping after trial 0: preflight: gradient check FAILED: 2 at hidden_weight" in out
    assert "No searched key can change" in out
    note = _note(study, trials[0])
    assert "| gradient | **FAIL** | 2 | 0.0001 | `hidden_weight` |" in note
    assert "the sweep stops after this trial" in note


def test_preflight_failure_a_searched_key_can_fix_fails_only_those_trials(in_tmp, capsys):
    code = main([*BLOBS, *BROKEN, LR, "sweep.n_trials=6", "sweep.max_failure_rate=1.0", "+model.factor=1.0",
                 "+search.model.factor={type:categorical,choices:[1.0,-1.0]}"])
    assert code == 0
    trials = _study().get_trials()
    assert len(trials) == 6
    for t in trials:
        broken = t.params["model.factor"] == -1.0
        assert t.state == (TrialState.FAIL if broken else TrialState.COMPLETE)
        assert t.user_attrs["preflight"]["gradient"]["passed"] is not broken
        assert "preflight.unfixable" not in t.user_attrs
    assert (sum(t.user_attrs["preflight"]["cache"] == "miss" for t in trials)
            == len({t.params["model.factor"] for t in trials}))


def test_preflight_ten_trials_of_one_architecture_run_the_checks_once(in_tmp, monkeypatch):
    calls = {"gradient": 0, "init_loss": 0, "overfit": 0}
    for name in calls:
        real = getattr(preflight_module, f"{name}_check")

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(preflight_module, f"{name}_check", counted)
    # model.dropout is searched but listed in preflight.ignore: one architecture for the checks
    # vault.auto_open=false: the resume below extends the study, which an opened vault refuses.
    args = [*BLOBS, LR, "+search.model.dropout={type:float,low:0.0,high:0.5}", "vault.auto_open=false"]
    assert main([*args, "sweep.n_trials=10"]) == 0
    assert calls == {"gradient": 1, "init_loss": 1, "overfit": 1}
    study = _study()
    trials = study.get_trials()
    assert [t.user_attrs["preflight"]["cache"] for t in trials] == ["miss"] + ["hit"] * 9
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert all(t.user_attrs["preflight"][c]["passed"] is True for c in calls)
        assert t.user_attrs["preflight"]["init_loss"]["threshold"] == 0.1
    first = trials[0].user_attrs
    assert all(t.user_attrs["preflight"]["gradient"]["value"] == first["preflight"]["gradient"]["value"]
               for t in trials)
    cached = [v for k, v in study.user_attrs.items() if k.startswith("preflight.cache.")]
    assert len(cached) == 1 and cached[0]["trial"] == 0
    assert "Checks reused from the study's cache" in _note(study, trials[1])
    # a resumed run reuses the study's cache too
    assert main([*args, "sweep.n_trials=12"]) == 0
    assert calls == {"gradient": 1, "init_loss": 1, "overfit": 1}


def test_preflight_off_runs_no_check(in_tmp):
    assert main([*BLOBS, *BROKEN, LR, "sweep.n_trials=2", "preflight=off"]) == 0
    for t in _study().get_trials():
        assert "preflight" not in t.user_attrs and not any(k.startswith("preflight.") for k in t.user_attrs)


@pytest.mark.parametrize("override,message", [
    ("preflight.gradient.threshold=0", "preflight.gradient.threshold must be > 0, got 0"),
    ("preflight.overfit.max_steps=0", "preflight.overfit.max_steps must be >= 1, got 0"),
    ("preflight.init_loss.tolerance=2", "preflight.init_loss.tolerance must be < 1, got 2"),
    ("preflight.gradient.step=0.5", "preflight.gradient.step must be in (0, 0.01], got 0.5"),
    ("+preflight.gradient.bogus=1", "preflight.gradient.bogus"),
    ("preflight.ignore=[optimizer.lr]", "preflight.ignore may list model.* keys only"),
    ("preflight=loose", "Could not find 'preflight/loose'"),
    ("+search.preflight.seed={type:int,low:0,high:3}", "preflight.* is fixed for a study and cannot be searched"),
])
def test_preflight_bad_config_exits_2(override, message, in_tmp, capsys):
    assert main([*BLOBS, override]) == 2
    assert message in capsys.readouterr().err
    assert list(in_tmp.iterdir()) == []
    assert preflight_cli.main([*BLOBS, override]) == 2


def test_preflight_cli_reports_and_exits_0_1(in_tmp, capsys):
    assert preflight_cli.main(BLOBS) == 0
    out = capsys.readouterr().out
    assert "all 3 checks passed" in out and "gradient   pass" in out
    assert preflight_cli.main([*BLOBS, *BROKEN]) == 1
    out = capsys.readouterr().out
    assert "gradient   FAIL  2 " in out and "at hidden_weight" in out
    assert "1 of 3 checks failed: gradient" in out
    assert preflight_cli.main([*BLOBS, "preflight=off"]) == 0
    assert "every check is off" in capsys.readouterr().out
    assert list(in_tmp.iterdir()) == [], "the preflight command writes nothing"


def test_preflight_fingerprint_ignores_dropout_but_not_architecture(in_tmp):
    import torch

    from sweeps.experiment._experiment import prepare
    from sweeps.trial._preflight import fingerprint, run_checks

    exp, dataset = prepare(BLOBS)
    data = dataset.train_val()
    base = exp.config({})
    other = [exp.config({}) for _ in range(2)]
    other[0].model.dropout, other[1].model.width = 0.4, 32
    assert fingerprint(other[0], data) == fingerprint(base, data)
    assert fingerprint(other[1], data) != fingerprint(base, data)
    state = torch.random.get_rng_state()
    first = run_checks(base, data)
    assert torch.equal(state, torch.random.get_rng_state()), "a trial trains as it would without the preflight"
    assert [r.to_dict() for r in run_checks(base, data)] == [r.to_dict() for r in first], "deterministic: cacheable"


def test_preflight_on_journal_storage_records_the_same_attributes(in_tmp):
    assert main([*BLOBS, LR, "sweep.n_trials=2", "sweep.storage=journal.log"]) == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("journal.log"))
    trials = optuna.load_study(study_name="sweeps", storage=storage).get_trials()
    assert [t.user_attrs["preflight"]["cache"] for t in trials] == ["miss", "hit"]
    assert all(t.user_attrs["preflight"]["overfit"]["passed"] is True for t in trials)


def test_preflight_cache_entry_this_process_wrote_is_not_read_again(in_tmp, monkeypatch):
    from sweeps.experiment._experiment import prepare

    exp, prepared = prepare([*BLOBS, "sweep.storage=sqlite:///sweeps.db"], probe=False, build_probes=False)
    data = prepared.train_val()
    cfg = exp.config({})
    storage = optuna.storages.RDBStorage("sqlite:///sweeps.db")
    study = optuna.create_study(study_name="sweeps", storage=storage)
    assert preflight_module.preflight(study.ask(), exp, cfg, data)[0]
    assert study.trials[0].user_attrs["preflight"]["cache"] == "miss"

    def unread(*args, **kwargs):
        raise AssertionError("the study's cache was read again")

    with monkeypatch.context() as patched:
        patched.setattr(storage, "get_study_user_attrs", unread)
        preflight_module.preflight(study.ask(), exp, cfg, data)
    assert study.trials[1].user_attrs["preflight"]["cache"] == "hit"
    # Another storage object (another process, a later command) reads the study's cache, and hits.
    other = optuna.load_study(study_name="sweeps", storage=optuna.storages.RDBStorage("sqlite:///sweeps.db"))
    preflight_module.preflight(other.ask(), exp, exp.config({}), data)
    assert other.trials[2].user_attrs["preflight"]["cache"] == "hit"
    assert other.trials[2].user_attrs["preflight"]["gradient"] == study.trials[0].user_attrs["preflight"]["gradient"]
