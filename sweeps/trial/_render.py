"""The plot renderer: draws trials' report plots in a separate process, off the trials' critical path.

A trial's report uploads a tiny placeholder PNG for each plot (so the artifact, its id and the note's
link exist before the trial ends), then hands the plot's numbers to the renderer and returns; the
renderer process (``python -m sweeps.trial._plots``) draws the PNG while the next trial trains and
overwrites the placeholder in the artifact store, then saves the trial's note (optuna-dashboard's
``save_note`` reads every attribute of the study twice: 9 ms a trial on SQLite at 20 trials, more as
the study grows; off the trial's path here). :meth:`Renderer.close`, called when the sweep's work is
done (or a worker's trial loop ends), waits for every job, so that a sweep that returns has all of
its plots and notes.

A sweep takes the process's renderer (:func:`shared_renderer`) and, at its end, :meth:`Renderer.drain`
waits for its jobs the same way but keeps the process for the next sweep in this process (a Hydra
multirun's combinations, a staged experiment's stages, a notebook's or a test suite's calls of
``main``): starting one costs about 1.5 s of CPU and a second of wall time at the sweep's end. Each
job names the folder it was submitted from (relative storage and artifact paths mean the same in the
renderer), and a drained renderer forgets the studies it opened (a database file removed and made
again at the same path is opened anew).

A plot that cannot be drawn never fails a trial: the renderer logs one warning and appends the
reason to the trial's note (notes live in the study's attributes, which stay writable after a trial
ended). A process, not a thread: drawing is Python code that holds the GIL, and a thread would
slow the next trial's training loop as much as it saves.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["COMMAND", "Renderer", "shared_renderer"]

log = logging.getLogger("sweeps")
COMMAND = [sys.executable, "-m", "sweeps.trial._plots"]
_CLOSE_TIMEOUT_S = 120.0  # plus 5 s per plot still pending


class Renderer:
    """One renderer process per worker, started on the first plot.

    Args:
        command: the process to start (tests substitute one that fails).
    """

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = list(command or COMMAND)
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._pending: dict[int, tuple[int, Callable[[str], None]]] = {}
        self._answers: list[tuple[int, str | None]] = []
        self._next_job = 0

    def submit(self, store_dir: str, plots: list[dict[str, Any]], on_failure: Callable[[str], None],
               note: dict[str, Any] | None = None) -> None:
        """Queues ``plots`` (``name``, ``artifact_id``, ``data``) for the file-system artifact store in
        ``store_dir``, and the trial's ``note`` (``storage``, ``study``, ``trial``: its number, ``body``)
        to save once they are drawn; ``on_failure(reason)`` is called (in the caller's thread, at the
        latest by :meth:`close`) if they cannot all be drawn or saved."""
        if not plots and not note:
            return
        self._handle_answers()
        job = self._next_job
        self._next_job += 1
        line = json.dumps({"job": job, "cwd": os.getcwd(), "store": store_dir, "plots": plots, "note": note}) + "\n"
        try:
            process = self._start()
            with self._lock:
                self._pending[job] = (len(plots) + bool(note), on_failure)
            process.stdin.write(line)
            process.stdin.flush()
        except (OSError, ValueError) as exc:  # the process could not start, or died: a pipe error
            with self._lock:
                self._pending.pop(job, None)
            on_failure(f"the plot renderer is not running ({type(exc).__name__}: {exc})")

    def drain(self) -> None:
        """Waits for every queued job (at most a few minutes, as :meth:`close`) and reports the failed
        ones, keeping the process for later jobs; it forgets the studies it opened. A process that
        died or does not answer in time is ended as :meth:`close` ends it."""
        process = self._process
        if process is None:
            return
        with self._lock:
            deadline = time.monotonic() + _CLOSE_TIMEOUT_S + 5 * sum(n for n, _ in self._pending.values())
            while self._unanswered() and process.poll() is None and time.monotonic() < deadline:
                self._answered.wait(0.05)
            done = not self._unanswered()
        if not done:
            self.close()
            return
        self._handle_answers()
        try:
            process.stdin.write(json.dumps({"forget": True}) + "\n")
            process.stdin.flush()
        except (OSError, ValueError):
            self.close()  # it died meanwhile: the next job starts another

    def _unanswered(self) -> bool:
        """Whether a queued job has no answer yet (called with the lock held)."""
        answered = {job for job, _ in self._answers}
        return any(job not in answered for job in self._pending)

    def close(self) -> None:
        """Waits for every queued plot (at most a few minutes), then ends the process."""
        process, self._process = self._process, None
        if process is None:
            return
        with self._lock:
            n_plots = sum(n for n, _ in self._pending.values())
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=_CLOSE_TIMEOUT_S + 5 * n_plots)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join()
        self._handle_answers()
        with self._lock:
            lost, self._pending = self._pending, {}
        for _, on_failure in lost.values():
            on_failure(f"the plot renderer ended early (exit {process.returncode})")

    def _start(self) -> subprocess.Popen:
        if self._process is not None:
            return self._process
        # Its own stdout: the renderer's answers never mix with the sweep's progress lines.
        self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self._process,), name="sweeps-renderer",
                                        daemon=True)
        self._reader.start()
        return self._process

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            try:
                answer = json.loads(line)
                entry = (int(answer["job"]), answer.get("error"))
            except (ValueError, KeyError, TypeError):
                continue  # not an answer (a library printed something)
            with self._lock:
                self._answers.append(entry)
                self._answered.notify_all()

    def _handle_answers(self) -> None:
        """Forgets finished jobs; reports the failed ones, in the caller's thread."""
        with self._lock:
            answers, self._answers = self._answers, []
            failed = [(self._pending.pop(job, (0, None))[1], error) for job, error in answers]
        for on_failure, error in failed:
            if error is not None and on_failure is not None:
                on_failure(error)


_SHARED: Renderer | None = None


def shared_renderer() -> Renderer:
    """The renderer of this process's sweeps: started on the first plot, kept across sweeps (each
    ends with :meth:`Renderer.drain`), ended when the process exits. A changed :data:`COMMAND`
    (tests substitute one) gets a renderer of its own."""
    global _SHARED
    if _SHARED is None or _SHARED.command != list(COMMAND):
        if _SHARED is not None:
            _SHARED.close()
        _SHARED = Renderer()
        atexit.register(_SHARED.close)
    return _SHARED
