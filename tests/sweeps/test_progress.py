"""Progress inside a training run: a status line on a terminal, few lines in a log."""

import io

from practices.train import EpochStats
from sweeps import train as train_cli
from sweeps.trial._progress import EpochProgress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _run(progress, epochs):
    for epoch in range(1, epochs + 1):
        progress.on_epoch_end(EpochStats(epoch, 1.0 / epoch, 1.1 / epoch, 0.5, 0.01))
    progress.on_fit_end()


def test_a_log_gets_at_most_max_lines_and_the_last_epoch():
    log = io.StringIO()
    _run(EpochProgress("train", 25, "val_accuracy", max_lines=10, stream=log), 25)
    lines = log.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"train epoch {e}/25" for e in (3, 6, 9, 12, 15, 18, 21, 24, 25)]
    assert lines[-1] == "train epoch 25/25: train_loss 0.0400 val_loss 0.0440 val_accuracy 0.5000 lr 0.01"


def test_a_sweeps_log_gets_no_epoch_lines():
    log = io.StringIO()
    _run(EpochProgress("trial 3", 12, "val_accuracy", stream=log), 12)
    assert log.getvalue() == ""


def test_a_terminal_gets_one_status_line_rewritten_and_erased():
    tty = _Terminal()
    _run(EpochProgress("trial 3", 4, "val_loss", stream=tty), 4)
    out = tty.getvalue()
    assert "\n" not in out and out.count("\r\x1b[2K") == 5 and out.endswith("\r\x1b[2K")
    assert "trial 3 epoch 4/4: train_loss 0.2500 val_loss 0.2750 lr 0.01" in out, "val_loss shown once"


def test_train_takes_hydra_overrides_and_shows_epochs(in_tmp, capsys):
    assert train_cli.main(["+experiment=quickstart", "trainer.max_epochs=3", "trainer.num_threads=1",
                           "preflight=off"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("training quickstart once: its base values (not searched here: optimizer.lr")
    assert "train epoch 1/3: train_loss" in out and "train epoch 3/3: train_loss" in out
    assert "val_accuracy=" in out.splitlines()[-1] and "(seed 0)" in out
    assert list(in_tmp.iterdir()) == [], "training once writes nothing"
