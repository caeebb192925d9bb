"""Progress inside one training run: a status line that rewrites itself on a terminal, and at most
about ten plain lines per run where output goes to a file or a pipe (a log must not fill with epochs).
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from practices.train import Callback, EpochStats

__all__ = ["EpochProgress", "is_terminal"]

_CLEAR = "\r\x1b[2K"  # back to the line's start, erase it


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


class EpochProgress(Callback):
    """Shows each epoch's numbers: on a terminal one status line, rewritten every epoch and erased at
    the end; elsewhere one line every ``max_epochs / max_lines`` epochs (and the last), or nothing
    with ``max_lines=0``.

    Args:
        label: what runs, e.g. ``trial 12``.
        max_epochs: the run's epoch budget.
        metric: the validation metric to show (``val_accuracy`` or ``val_loss``).
        max_lines: lines at most when the stream is no terminal; 0 keeps such output silent.
        stream: where to write; standard output when None.
    """

    def __init__(self, label: str, max_epochs: int, metric: str, *, max_lines: int = 0,
                 stream: TextIO | None = None) -> None:
        self.label, self.max_epochs, self.metric = label, max_epochs, metric
        self.stream = stream if stream is not None else sys.stdout
        self.terminal = is_terminal(self.stream)
        self.every = math.ceil(max_epochs / max_lines) if max_lines > 0 else 0
        self._shown = False

    def text(self, stats: EpochStats) -> str:
        shown = f" {self.metric} {stats.metric(self.metric):.4f}" if self.metric != "val_loss" else ""  # shown once
        return (f"{self.label} epoch {stats.epoch}/{self.max_epochs}: train_loss {stats.train_loss:.4f} "
                f"val_loss {stats.val_loss:.4f}{shown} lr {stats.lr:.3g}")

    def on_epoch_end(self, stats: EpochStats) -> bool | None:
        if self.terminal:
            self.stream.write(_CLEAR + self.text(stats))
            self.stream.flush()
            self._shown = True
        elif self.every and (stats.epoch % self.every == 0 or stats.epoch == self.max_epochs):
            self.stream.write(self.text(stats) + "\n")
            self.stream.flush()
        return None

    def on_fit_end(self) -> None:
        if self._shown:  # the next line (the trial's result) starts on a clean line
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False
