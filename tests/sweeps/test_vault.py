"""The test vault, end to end on small sweeps (tiny blobs, an MLP, 2 epochs) in a temporary folder."""

import json
import os
import subprocess
import sys
import threading
import types

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna_dashboard import get_note

import sweeps.vault.__main__ as vault_cli
from practices.data import TrainVal
from practices.sealed import SealedError
from practices.train import evaluate
from sweeps.__main__ import main
from sweeps.experiment import seal_test, unseal
from sweeps.experiment._build import build
from sweeps.experiment._experiment import prepare
from sweeps.storage._url import open_storage
from sweeps.study import _records
from sweeps.study._result import result_value
from sweeps.trial._objective import Objective
from sweeps.vault import Vault, VaultBusy, claim
from tests.helpers import subprocess_env

SMALL = ["data._target_=tests.helpers.blobs", "model=mlp", "model.width=8", "model.depth=1", "trainer.max_epochs=2",
         "trainer.batch_size=32", "trainer.num_threads=1", "sweep.n_trials=3", "sweep.sampler=random",
         "sweep.pruner=none", "+search.optimizer.lr={type:float,low:0.01,high:0.2}",
         "preflight=off",  # the blobs are not normalized: a width-8 MLP fails the loss-at-init check on them
         "select=off"]  # the vault of the best trial; tests/sweeps/test_select.py opens it for a selected winner
STORAGE = "sqlite:///sweeps.db"


def _study(name: str = "sweeps") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=STORAGE)


def _opened(study: optuna.Study) -> list[dict]:
    return [e for e in _records.read(study, "vault.audit") if e["event"] == "opened"]


@pytest.fixture
def opened(in_tmp, capsys):
    """A finished 3-trial sweep whose vault the driver opened."""
    assert main(SMALL) == 0
    capsys.readouterr()
    return _study()


def test_vault_opens_once_at_n_trials_and_records_the_result(opened, in_tmp):
    study, best = opened, opened.best_trial
    result = _records.read(study, "vault.result")
    assert result["opening"] == 1 and result["forced"] is False
    assert result["trial"] == best.number and result["val_value"] == best.value
    assert result["final_model"] == "retrain" and result["epochs"] == result_value(best, "best_epoch")
    assert result["seed"] == best.user_attrs["seed"]
    assert result["val_value_retrained"] == best.value, "the retrain reproduces the best trial's model"
    assert result["fingerprint"] == _records.read(study, "vault.seal")["fingerprint"]
    assert result["n_test"] == 24 and result["pid"] == os.getpid() and result["host"]
    assert 0.0 <= result["test"]["test_accuracy"] <= 1.0 and result["test"]["test_loss"] > 0
    assert [e["event"] for e in _records.read(study, "vault.audit")] == ["sealed", "opened"]
    exported = json.loads((in_tmp / "exports/sweeps/test_result.json").read_text())
    assert exported["result"] == result and exported["state"] == "opened" and exported["forced"] is False
    best_yaml = (in_tmp / "exports/sweeps/best.yaml").read_text()
    assert yaml.safe_load(best_yaml)["provenance"]["vault"]["result"] == result
    assert f"test_accuracy {result['test']['test_accuracy']:.6g}" in best_yaml.splitlines()[3]
    note = get_note(study)
    assert "## Test vault" in note and f"trial {best.number}" in note and "FORCED" not in note


def test_rerun_of_a_finished_sweep_prints_the_recorded_result_and_evaluates_nothing(opened, capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    result = _records.read(opened, "vault.result")
    assert f"was opened: test_accuracy={result['test']['test_accuracy']:.4f}" in out
    assert len(_opened(_study())) == 1 and _records.read(_study(), "vault.result") == result


def test_second_opening_is_refused_quoting_the_result(opened, capsys):
    assert vault_cli.main(["open", *SMALL]) == 2
    err = capsys.readouterr().err
    result = _records.read(opened, "vault.result")
    assert "A second opening is refused" in err and f"test_accuracy={result['test']['test_accuracy']:.4f}" in err
    assert len(_opened(_study())) == 1


def test_forced_reopen_is_recorded_and_flagged_everywhere(opened, in_tmp, capsys):
    assert vault_cli.main(["open", *SMALL, "vault.reopen=true"]) == 0
    study = _study()
    result = _records.read(study, "vault.result")
    assert result["opening"] == 2 and result["forced"] is True
    assert [(e["opening"], e["forced"]) for e in _opened(study)] == [(1, False), (2, True)]
    exported = json.loads((in_tmp / "exports/sweeps/test_result.json").read_text())
    assert exported["forced"] is True and exported["forced_actions"][0]["opening"] == 2
    assert "FORCED" in get_note(study)
    capsys.readouterr()
    assert main(SMALL) == 0, "a plain rerun after a forced reopen is still a no-op"
    assert "FORCED" in (in_tmp / "exports/sweeps/best.yaml").read_text()
    assert yaml.safe_load((in_tmp / "exports/sweeps/best.yaml").read_text())["provenance"]["vault"]["forced"] is True
    assert vault_cli.main(["status", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "vault: opened" in out and "FORCED actions: 1" in out and "opened (forced)" in out


def test_resuming_an_opened_study_refuses_new_trials_unless_forced(opened, capsys):
    assert main([*SMALL, "sweep.n_trials=5"]) == 2
    err = capsys.readouterr().err
    assert "Adding trials now (3 -> 5)" in err and "vault.reopen=true" in err
    assert len(_study().get_trials()) == 3
    assert main([*SMALL, "sweep.n_trials=5", "vault.reopen=true"]) == 0
    study = _study()
    assert len(study.get_trials()) == 5
    events = [(e["event"], e.get("forced")) for e in _records.read(study, "vault.audit")]
    assert events == [("sealed", None), ("opened", False), ("tuning_after_opening", True), ("opened", True)]
    assert "tuning on (3 -> 5 trials)" in capsys.readouterr().out


def test_changed_test_data_is_refused_by_the_fingerprint(in_tmp, capsys):
    import pandas as pd

    from tests.helpers import blobs

    X, y = (t.numpy() for t in blobs())
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).assign(label=y)
    frame.to_csv(in_tmp / "blobs.csv", index=False)
    table = ["data=csv", f"data.path={in_tmp}/blobs.csv", "data.label=label", *SMALL[1:], "vault.auto_open=false"]
    assert main(table) == 0
    _, dataset = prepare(table)
    frame.loc[int(dataset.sealed.indices[0]), "f0"] += 0.5  # one test sample changes
    frame.to_csv(in_tmp / "blobs.csv", index=False)
    capsys.readouterr()
    assert main(table) == 2
    err = capsys.readouterr().err
    # The study is named after the data file (sweeps-blobs): README, "Study names."
    assert "the test split changed since study 'sweeps-blobs' was sealed" in err
    assert "sweep.study_name=sweeps-blobs-2" in err
    assert [e["event"] for e in _records.read(_study("sweeps-blobs"), "vault.audit")] == ["sealed"]


def test_duplicates_planted_across_splits_are_counted_reported_and_dropped(in_tmp, capsys):
    leaky = ["data._target_=tests.helpers.leaky_blobs", *SMALL[1:], "sweep.n_trials=1", "vault.auto_open=false"]
    _, kept = prepare(leaky)
    assert kept.duplicates.count == 3 and kept.sealed.n_samples == 24 and kept.n_dropped == 0
    assert main(leaky) == 0
    assert "3 test samples also occur in train/validation" in capsys.readouterr().out
    assert _study().user_attrs["vault.duplicates"] == 3
    _, dropped = prepare([*leaky, "vault.drop_duplicates=true"])
    assert dropped.sealed.n_samples == 21 and dropped.n_dropped == 3
    assert not set(dropped.sealed.indices) & set(kept.duplicates.test_indices)
    assert dropped.sealed.fingerprint != kept.sealed.fingerprint


def test_seal_test_is_deterministic_and_stratified():
    from practices.data import load_digits, split_indices

    X, y = load_digits()
    cut = lambda: split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)  # noqa: E731
    first, _, _ = seal_test(X, y, cut(), drop_duplicates=False)
    second, _, _ = seal_test(X.copy(), y.copy(), cut(), drop_duplicates=True)
    assert first.fingerprint == second.fingerprint and first.n_samples == 360
    _, y_test = unseal(first)
    share = np.bincount(y_test.numpy(), minlength=10) / len(y_test)
    assert np.abs(share - np.bincount(y) / len(y)).max() < 0.01


def _arrays_reachable_from(root: object) -> list[np.ndarray]:
    """Every tensor and array reachable from ``root`` through attributes and containers."""
    seen, found, todo = set(), [], [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None), type, types.ModuleType,
                                                 types.FunctionType, types.MethodType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj.detach().cpu().numpy())
        elif isinstance(obj, np.ndarray):
            found.append(obj)
        elif isinstance(obj, dict):
            todo += list(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            todo += list(obj)
        elif hasattr(obj, "__dict__"):
            todo += list(vars(obj).values())
    return found


def test_trial_code_cannot_read_test_data(in_tmp):
    exp, dataset = prepare(SMALL)
    objective = Objective(exp, dataset.train_val())
    X_test, _ = unseal(dataset.sealed)  # only the vault opens it
    test_rows = {row.tobytes() for row in X_test.numpy().reshape(len(X_test), -1)}
    for array in _arrays_reachable_from(objective):
        rows = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(1, -1)
        assert not {row.tobytes() for row in rows.astype(np.float32)} & test_rows
    assert not hasattr(objective.data, "X_test") and isinstance(objective.data, TrainVal)

    class Snooping(Objective):
        """Trial code that reaches for the test split anyway."""

        def __call__(self, trial):
            X, y = dataset.sealed.tensors(key=object())
            return float(y.float().mean())

    study = optuna.create_study()
    study.optimize(Snooping(exp, dataset.train_val()), n_trials=1, catch=(SealedError,))
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    with pytest.raises(SealedError, match="only the vault opens it"):
        Snooping(exp, dataset.train_val())(optuna.create_study().ask())


def test_checkpoint_final_model_is_loaded_from_the_artifact_store(in_tmp, capsys):
    manual = [*SMALL, "vault.auto_open=false", "vault.final_model=checkpoint"]
    assert main(manual) == 0
    exp, dataset = prepare(manual)
    study, best = _study(), _study().best_trial
    cfg = exp.config(best.params)
    untrained = build(cfg, dataset.in_shape, dataset.n_classes, seed=123).model  # tells a checkpoint from a retrain
    torch.save(untrained.state_dict(), in_tmp / "best.pt")
    (in_tmp / "sweeps_artifacts").mkdir(exist_ok=True)  # where sweeps.storage._url.artifact_dir puts it for sweeps.db
    store = optuna.artifacts.FileSystemArtifactStore(in_tmp / "sweeps_artifacts")
    artifact_id = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(in_tmp / "best.pt"),
                                                   study_or_trial=study)
    # A finished trial is read-only, so plant a better copy of the best trial that carries the checkpoint.
    study.add_trial(optuna.trial.create_trial(
        params=best.params, distributions=best.distributions, value=best.value + 1.0,
        user_attrs={**best.user_attrs,
                    "result": {**best.user_attrs.get("result", {}), "best_checkpoint": artifact_id}}))
    assert vault_cli.main(["open", *manual]) == 0
    result = _records.read(_study(), "vault.result")
    assert result["final_model"] == "checkpoint" and result["artifact_id"] == artifact_id
    X_test, y_test = unseal(dataset.sealed)
    loss, accuracy = evaluate(untrained, X_test, y_test)
    assert result["test"] == {"test_accuracy": accuracy, "test_loss": loss}


def test_checkpoint_final_model_uses_the_monitors_checkpoint_of_the_best_trial(in_tmp, capsys):
    assert main([*SMALL, "vault.final_model=checkpoint"]) == 0
    best = _study().best_trial
    result = _records.read(_study(), "vault.result")
    assert result["final_model"] == "checkpoint"
    assert result["artifact_id"] == result_value(best, "best_checkpoint")


def test_checkpoint_option_falls_back_to_retrain_without_a_saved_checkpoint(in_tmp, capsys):
    assert main([*SMALL, "vault.final_model=checkpoint", "monitor.checkpoints=none"]) == 0
    assert "has no saved checkpoint (user attr result.best_checkpoint" in capsys.readouterr().out
    assert _records.read(_study(), "vault.result")["final_model"] == "retrain"


def test_study_user_attrs_stay_short_and_the_study_is_the_only_one_listed(opened):
    summaries = optuna.get_all_study_summaries(STORAGE)
    assert [s.study_name for s in summaries] == ["sweeps"], "no helper study beside the user's"
    attrs = summaries[0].user_attrs
    assert len(json.dumps(attrs)) < 600, attrs  # what `optuna studies` prints in the study's row
    assert all(isinstance(v, (str, int, float, bool)) or v is None for v in attrs.values()), attrs
    result = _records.read(opened, "vault.result")
    assert attrs["vault"] == (f"opened #1: test_accuracy {result['test']['test_accuracy']:.4f}, "
                              f"test_loss {result['test']['test_loss']:.4f} (trial {result['trial']})")
    assert attrs["experiment"] == "sweeps" and len(_records.read(opened, "experiment")["base"]) > 5


def test_claim_is_atomic_across_threads_racing_on_one_storage(in_tmp):
    optuna.create_study(study_name="sweeps", storage=STORAGE).set_user_attr("vault.seal", {"id": "abc"})
    n_racers, barrier = 6, threading.Barrier(6)
    vaults = [Vault(optuna.load_study(study_name="sweeps", storage=open_storage(STORAGE)))
              for _ in range(n_racers)]
    won = []

    def race(vault):
        barrier.wait()
        try:
            claim(vault, 1, forced=False)
            won.append(vault)
        except VaultBusy:
            pass

    threads = [threading.Thread(target=race, args=(v,)) for v in vaults]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert [c["opening"] for c in vaults[0].claims()] == [1] and vaults[0].state() == "claimed"


@pytest.mark.slow
def test_two_processes_racing_to_open_record_exactly_one_evaluation(in_tmp):
    manual = [*SMALL, "vault.auto_open=false"]
    assert main(manual) == 0
    command = [sys.executable, "-m", "sweeps.vault", "open", *manual]
    procs = [subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    loser = outputs[[p.returncode for p in procs].index(2)][1]
    assert "claimed opening #1" in loser or "A second opening is refused" in loser
    study = _study()
    assert len(_opened(study)) == 1 and _records.read(study, "vault.result")["opening"] == 1
    names = [s.study_name for s in optuna.get_all_study_summaries(STORAGE)]
    assert names == ["sweeps"], "the claim leaves no helper study behind"


def test_bad_vault_config_exits_2_before_anything_is_written(in_tmp, capsys):
    assert main([*SMALL, "vault.final_model=best"]) == 2
    assert "vault.final_model must be one of ['retrain', 'checkpoint'], got 'best'" in capsys.readouterr().err
    assert main([*SMALL, "+search.vault.reopen={type:categorical,choices:[true,false]}"]) == 2
    assert "vault.* is fixed for a study and cannot be searched" in capsys.readouterr().err
    assert list(in_tmp.iterdir()) == []


def test_vault_status_of_a_missing_study_exits_2(in_tmp, capsys):
    assert vault_cli.main(["status", *SMALL]) == 2
    assert "no study 'sweeps'" in capsys.readouterr().err
    assert vault_cli.main(["peek", *SMALL]) == 2


@pytest.mark.parametrize("final_model", ["retrain", "checkpoint"])
def test_final_model_is_the_averaged_one_when_averaging_is_on(in_tmp, capsys, final_model):
    from practices.averaging import WeightAverage
    from practices.train import fit

    args = [*SMALL, "trainer.averaging=ema", "trainer.ema_decay=0.5", f"vault.final_model={final_model}"]
    assert main(args) == 0
    result, best = _records.read(_study(), "vault.result"), _study().best_trial
    assert result["final_model"] == final_model
    exp, dataset = prepare(args)
    cfg = exp.config(best.params)
    X_test, y_test = unseal(dataset.sealed)
    losses = {}
    for averaged in (False, True):  # the best trial's model by hand, to its best epoch
        built = build(cfg, dataset.in_shape, dataset.n_classes, seed=best.user_attrs["seed"])
        average = WeightAverage(built.model, "ema", ema_decay=0.5) if averaged else None
        fit(built.model, built.optimizer, built.scheduler, dataset.train_val(),
            max_epochs=result_value(best, "best_epoch"), batch_size=cfg.trainer.batch_size,
            seed=best.user_attrs["seed"],
            average=average)
        losses[averaged] = evaluate(built.model, X_test, y_test)[0]
    assert result["test"]["test_loss"] == pytest.approx(losses[True], rel=1e-6)
    assert result["test"]["test_loss"] != pytest.approx(losses[False], rel=1e-6)


@pytest.mark.parametrize("averaging, start, expected_start", [("swa", None, 7), ("swa", 3, 3), ("none", None, None)])
def test_retrain_config_keeps_the_trials_swa_window(averaging, start, expected_start):
    """A trial of 8 epochs with SWA's default start averages epochs 7-8; cut at its best epoch 7, the
    retrain must still start averaging at epoch 7, not at 0.75 * 7 + 1 = 6."""
    from omegaconf import OmegaConf

    from sweeps.vault._open import retrain_config

    cfg = OmegaConf.create({"trainer": {"max_epochs": 8, "averaging": averaging, "swa_start_epoch": start}})
    cut = retrain_config(cfg, 7)
    assert cut.trainer.max_epochs == 7
    assert cut.trainer.swa_start_epoch == expected_start
