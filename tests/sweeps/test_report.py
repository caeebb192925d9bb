"""The trial report: note, plots and checkpoints in the study's storage and artifact store."""

import io
import os
import sys

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard import get_note
from PIL import Image

from practices.monitor import Monitor
from practices.train import EpochStats, evaluate
from sweeps.__main__ import main
from sweeps.experiment._build import build
from sweeps.experiment._experiment import Experiment
from sweeps.storage import study_id, study_storage, trial_id
from sweeps.study import _records
from sweeps.study._result import result_value
from sweeps.trial import _render
from sweeps.trial._plots import PLACEHOLDER_PNG
from sweeps.trial._render import Renderer
from sweeps.trial._report import preflight_rows, render_note

PREFLIGHT = {
    "preflight.gradient_check.passed": True,
    "preflight.gradient_check.value": 3.2e-8,
    "preflight.gradient_check.threshold": 1e-4,
    "preflight.init_loss.passed": False,
    "preflight.init_loss.value": 4.1,
    "preflight.init_loss.threshold": 0.5,
    "seed": 7,
}


def _planted_monitor():
    monitor = Monitor(checkpoints="none")
    for epoch, (train, val) in enumerate([(2.0, 1.5), (1.0, 1.0), (0.5, 1.2), (0.2, 1.4), (0.1, 1.7)], 1):
        monitor.sampled_losses = [2.3]
        monitor.on_epoch_end(EpochStats(epoch, train, val, 1 - val / 3, 0.1))
    return monitor


def test_preflight_rows_come_from_user_attrs():
    assert preflight_rows(PREFLIGHT) == [("gradient_check", True, 3.2e-8, 1e-4), ("init_loss", False, 4.1, 0.5)]
    assert preflight_rows({"seed": 1, "preflight.note": "x"}) == []
    record = {"cache": "hit", "init_loss": {"passed": False, "value": 4.1, "threshold": 0.5}}
    assert preflight_rows({"preflight": record}) == [("init_loss", False, 4.1, 0.5)]


def test_render_note_has_preflight_diagnoses_best_epoch_and_artifacts():
    monitor = _planted_monitor()
    note = render_note(3, monitor, monitor.diagnose(), "**complete** after 5 epochs", PREFLIGHT,
                       [("best_checkpoint.pt", "/artifacts/1/4/abc"), ("loss_curve.png", "/artifacts/1/4/def")])
    assert note.startswith("## Training report, trial 3\n")
    assert "Best epoch: **2** (val_accuracy = 0.6667)" in note
    assert "| gradient_check | passed | 3.2e-08 | 0.0001 |" in note
    assert "| init_loss | FAILED | 4.1 | 0.5 |" in note
    assert "- **overfitting** (warning, epoch 3): `the validation loss rose 70%" in note
    assert "*Advice:* `Training and validation loss drift apart" in note
    assert "- [best_checkpoint.pt](/artifacts/1/4/abc)" in note and "![loss_curve.png](/artifacts/1/4/def)" in note


def test_render_note_without_preflight_or_problems():
    monitor = Monitor(checkpoints="none")
    monitor.sampled_losses = [2.3]
    monitor.on_epoch_end(EpochStats(1, 0.3, 0.31, 0.9, 0.1))
    note = render_note(0, monitor, [], "**complete** after 1 epochs", {"seed": 1}, [])
    assert "Preflight" not in note and "No problems found." in note and "Artifacts" not in note


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    storage = f"sqlite:///{folder}/s.db"
    code = main(["+experiment=quickstart", "sweep.n_trials=3", "trainer.max_epochs=3", "trainer.num_threads=1",
                 f"sweep.storage={storage}", f"sweep.export_dir={folder}/exports"])
    return folder, code, optuna.load_study(study_name="quickstart", storage=storage)


def test_every_trial_of_a_sweep_has_its_note_and_artifacts(small_sweep):
    folder, code, study = small_sweep
    assert code == 0
    store = FileSystemArtifactStore(folder / "s_artifacts")
    for trial in study.get_trials():
        note = get_note(_live(study, trial))
        assert note.startswith(f"## Training report, trial {trial.number}\n") and "### Diagnoses" in note
        names = {meta.filename: meta.artifact_id for meta in get_all_artifact_meta(trial, storage=study_storage(study))}
        expected = {"loss_curve.png", "update_ratio.png", "first_layer_filters.png", "best_checkpoint.pt",
                    "last_checkpoint.pt"}
        assert set(names) == expected
        types = {meta.filename: meta.mimetype for meta in get_all_artifact_meta(trial, storage=study_storage(study))}
        assert types["best_checkpoint.pt"] == types["last_checkpoint.pt"] == "application/octet-stream"
        assert types["loss_curve.png"] == "image/png"
        assert result_value(trial, "best_checkpoint") == names["best_checkpoint.pt"]
        assert result_value(trial, "last_checkpoint") == names["last_checkpoint.pt"]
        for artifact_id in names.values():
            assert (store._base_path / artifact_id).stat().st_size > 0
        for name in ("loss_curve.png", "update_ratio.png", "first_layer_filters.png"):
            # Drawn by the renderer process after the trial ended: the placeholder is gone once main returns.
            content = (store._base_path / names[name]).read_bytes()
            assert content != PLACEHOLDER_PNG and content.startswith(b"\x89PNG")
            width, height = Image.open(io.BytesIO(content)).size
            assert width > 100 and height > 100
            assert f"/artifacts/{study_id(study)}/{trial_id(study, trial)}/{artifact_id}" in note
        assert isinstance(result_value(trial, "diagnoses"), str)
        # A handful per concern: searched values, seed and outcome, checkpoints, 3 numbers per preflight check.
        assert len(trial.user_attrs) < 30, "user attributes stay small; curves go to artifacts"
        assert all(isinstance(v, (str, int, float, bool)) for k, v in trial.user_attrs.items()
                   if k not in ("preflight", "config", "result"))  # each one JSON object: one storage write
        # What training ended with and the report's ids: one record, written once.
        assert {"diagnoses", "best_checkpoint", "last_checkpoint"} <= set(trial.user_attrs["result"])
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert {"device", "best_epoch", "epochs_run"} <= set(trial.user_attrs["result"])
        assert set(trial.user_attrs["config"]) >= {"optimizer.lr", "schedule"}


def test_best_checkpoint_of_a_sweep_reproduces_the_trial_value(small_sweep, tmp_path):
    folder, _, study = small_sweep
    best = study.best_trial
    path = tmp_path / "best.pt"
    download_artifact(artifact_store=FileSystemArtifactStore(folder / "s_artifacts"), file_path=str(path),
                      artifact_id=result_value(best, "best_checkpoint"))
    state = torch.load(path, weights_only=True)
    exp = Experiment.from_record(_records.read(study, "experiment"))
    data = exp.load().train_val()
    built = build(exp.config(best.params), data.in_shape, data.n_classes, seed=0)
    built.model.load_state_dict(state)
    _, val_accuracy = evaluate(built.model, data.X_val, data.y_val)
    assert val_accuracy == best.value


def test_sweep_prints_the_dashboard_command_with_the_artifact_dir(in_tmp, capsys):
    assert main(["sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1", "select=off",
                 "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]) == 0
    out = capsys.readouterr().out
    assert "watch it: optuna-dashboard sqlite:///sweeps.db --artifact-dir sweeps_artifacts" in out
    assert "inspect: optuna-dashboard sqlite:///sweeps.db --artifact-dir sweeps_artifacts" in out
    assert len(list((in_tmp / "sweeps_artifacts").iterdir())) == 4, "an MLP has no filters to show"


def _live(study, frozen):
    """get_note takes a live Trial; rebuild one for a finished trial (read-only use)."""
    return optuna.Trial(study, trial_id(study, frozen))


def test_report_trial_never_raises_and_masks_the_storage_password(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from sweeps.trial import _report

    storage = "postgresql://user:hunter2@db.example/sweeps"

    def broken_upload(**kwargs):
        raise OSError(f"disk full while writing for {storage}")

    monkeypatch.setattr(_report, "upload_artifact", broken_upload)
    cfg = OmegaConf.create({"sweep": {"storage": storage, "artifact_dir": str(tmp_path / "artifacts")}, "monitor": {}})
    study = optuna.create_study()
    trial = study.ask()
    monitor = _planted_monitor()
    monitor.best_state = {"w": torch.zeros(2)}
    _report.report_trial(trial, monitor, cfg, None)
    reason = study.trials[0].user_attrs["report_error"]
    assert reason.startswith("OSError: disk full") and "hunter2" not in reason and "***" in reason
    study.tell(trial, 1.0)
    assert study.trials[0].state == TrialState.COMPLETE


def test_report_a_failing_renderer_never_fails_the_trial(tmp_path, monkeypatch, capfd):
    # A renderer process that takes both trials' jobs and dies without drawing anything.
    takes_two = "import sys; [sys.stdin.readline() for _ in range(2)]; sys.exit(3)"
    monkeypatch.setattr(_render, "COMMAND", [sys.executable, "-c", takes_two])
    storage = f"sqlite:///{tmp_path}/s.db"
    code = main(["+experiment=quickstart", "sweep.n_trials=2", "trainer.max_epochs=2", "trainer.num_threads=1",
                 "preflight=off", "select=off", "search.schedule.options.cosine.warmup_epochs.high=1",
                 f"sweep.storage={storage}", f"sweep.export_dir={tmp_path}/exports"])
    assert code == 0
    study = optuna.load_study(study_name="quickstart", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for trial in study.trials:
        note = get_note(_live(study, trial))
        assert "_The plots could not be drawn:_ `the plot renderer ended early (exit 3)`" in note
        assert "report_error" not in trial.user_attrs
    out, err = capfd.readouterr()
    assert (out + err).count("its plots could not be drawn: the plot renderer ended early (exit 3)") == 2  # logged


def test_report_renderer_reports_a_plot_it_cannot_draw(tmp_path):
    failures = []
    renderer = Renderer()
    renderer.submit(str(tmp_path), [{"name": "loss_curve.png", "artifact_id": "a1", "data": {"epochs": [1]}}],
                    failures.append)
    good = {"epochs": [1, 2], "train_loss": [2.0, 1.0], "val_loss": [2.1, 1.5], "metric": "val_accuracy",
            "metric_values": [0.3, 0.6], "lr": [0.1, 0.1], "best_epoch": 2}
    renderer.submit(str(tmp_path), [{"name": "loss_curve.png", "artifact_id": "a2", "data": good}], failures.append)
    renderer.close()
    assert failures == ["KeyError: 'best_epoch'"]
    assert (tmp_path / "a2").read_bytes().startswith(b"\x89PNG") and not (tmp_path / "a1").exists()


def _report_with_renderer(tmp_path, monkeypatch, note_storage):
    """One trial's report in an SQLite study, its note handed to the renderer for ``note_storage``;
    returns the study, the trial and the notes this process saved itself."""
    from omegaconf import OmegaConf

    from sweeps.trial import _report

    storage = f"sqlite:///{tmp_path}/s.db"
    cfg = OmegaConf.create({"sweep": {"storage": storage, "artifact_dir": str(tmp_path / "artifacts")}, "monitor": {}})
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    saved_here = []
    save_note = _report.save_note
    monkeypatch.setattr(_report, "save_note", lambda t, body: saved_here.append(body) or save_note(t, body))
    renderer = Renderer()
    _report.report_trial(trial, _planted_monitor(), cfg, None, renderer=renderer,
                         note_storage=storage if note_storage == "same" else note_storage)
    study.tell(trial, 0.5)
    renderer.close()
    return study, study.trials[0], saved_here


def test_report_note_is_saved_by_the_renderer_after_its_plots(tmp_path, monkeypatch):
    study, trial, saved_here = _report_with_renderer(tmp_path, monkeypatch, "same")
    note = get_note(_live(study, trial))
    assert saved_here == [] and note.startswith("## Training report, trial 0\n") and "loss_curve.png" in note
    assert "report_error" not in trial.user_attrs


def test_report_note_the_renderer_cannot_save_is_saved_here_with_the_reason(tmp_path, monkeypatch, capfd):
    # Another database, without the study: the renderer answers an error, this process saves the note.
    study, trial, saved_here = _report_with_renderer(tmp_path, monkeypatch, f"sqlite:///{tmp_path}/other.db")
    note = get_note(_live(study, trial))
    assert len(saved_here) == 1 and note == saved_here[0]
    assert note.startswith("## Training report, trial 0\n") and "_The plots could not be drawn:_ `KeyError" in note


def test_report_renderer_saves_notes_without_importing_sklearn(tmp_path):
    """optuna-dashboard's import pulls scikit-learn in through optuna.importance (1.7 s of CPU at every
    renderer start); the renderer keeps it out and still saves the note."""
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    study.tell(trial, 0.5)
    seen = tmp_path / "modules.txt"
    command = [sys.executable, "-c", "import sys; from sweeps.trial._plots import main; code = main(); "
               f"open({str(seen)!r}, 'w').write(' '.join(m for m, v in sys.modules.items() if v)); sys.exit(code)"]
    failures = []
    renderer = Renderer(command)
    renderer.submit(str(tmp_path), [], failures.append,
                    note={"storage": storage, "study": "s", "trial": 0, "body": "## a note"})
    renderer.close()
    assert failures == []
    assert get_note(_live(study, study.trials[0])) == "## a note"
    modules = set(seen.read_text().split())
    assert "optuna_dashboard" in modules and not any(m.split(".")[0] == "sklearn" for m in modules)


SHARED = ["+experiment=quickstart", "sweep.n_trials=2", "trainer.max_epochs=2", "trainer.num_threads=1",
          "preflight=off", "select=off", "search.schedule.options.cosine.warmup_epochs.high=1"]


def _drawn_and_noted(folder):
    """Each trial of the quickstart study in ``folder`` has its note, and every plot was drawn."""
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{folder}/sweeps.db")
    files = [p for p in (folder / "sweeps_artifacts").rglob("*") if p.is_file()]
    pngs = [p for p in files if p.read_bytes()[:8] == PLACEHOLDER_PNG[:8]]
    notes = [get_note(_live(study, t)) for t in study.trials]
    drawn = len(pngs) >= 2 and all(p.read_bytes() != PLACEHOLDER_PNG for p in pngs)
    return len(study.trials) == 2 and all(n.startswith("## Training report") for n in notes) and drawn


def test_report_sweeps_of_one_process_share_its_renderer_each_in_its_own_folder(in_tmp, monkeypatch):
    """A second sweep in the process (a multirun's next combination) reuses the renderer started by the
    first; relative paths (sqlite:///sweeps.db, sweeps_artifacts/) are the second sweep's own folder."""
    first, second = in_tmp / "a", in_tmp / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert main(SHARED) == 0
    renderer = _render.shared_renderer()
    pid = renderer._process.pid
    monkeypatch.chdir(second)
    assert main(SHARED) == 0
    assert _render.shared_renderer() is renderer and renderer._process.pid == pid and renderer._process.poll() is None
    assert _drawn_and_noted(first) and _drawn_and_noted(second)


def test_report_a_database_made_again_at_the_same_path_gets_its_notes(in_tmp):
    """The renderer forgets the studies it opened once a sweep ends: a file removed and made again is
    opened anew, not written through a connection to the removed one."""
    import shutil

    assert main(SHARED) == 0
    for path in in_tmp.glob("sweeps.db*"):  # with SQLite's -wal and -shm files
        path.unlink()
    for folder in ("sweeps_artifacts", "exports"):
        shutil.rmtree(in_tmp / folder)
    assert main(SHARED) == 0
    assert _drawn_and_noted(in_tmp)


def test_report_scratch_folder_is_emptied_after_each_report_and_removed_at_the_end(small_sweep):
    from sweeps.trial import _report

    folders = [folder for (pid, _), folder in _report._SCRATCH.items() if pid == os.getpid()]
    assert folders, "the sweep's reports went through a scratch folder"
    assert all(folder.is_dir() and not any(folder.iterdir()) for folder in folders)
    _report.remove_scratch()
    assert not any(folder.exists() for folder in folders)
    assert not [key for key in _report._SCRATCH if key[0] == os.getpid()]
