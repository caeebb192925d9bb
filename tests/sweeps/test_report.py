

def test_report_trial_never_raises_and_masks_the_storage_password(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from sweeps import _report

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
