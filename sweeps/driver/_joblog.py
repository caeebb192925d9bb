"""What Hydra keeps of a run, without passwords: its ``.hydra/`` files, its log file, its log lines.

Hydra writes a run's config, its Hydra config and its overrides into ``<run folder>/.hydra/`` (and, for
a multirun, ``multirun.yaml`` into the sweep folder) before the run starts, with any storage password
as typed. :class:`JobOutput` rewrites those files with passwords masked before the sweep opens its
storage, and copies what the sweep prints into the run's log file (``sweeps.log``), one line per
record, passwords masked. :func:`masked_log_records` masks every log record of the process, so that
Hydra's own lines (``#0 : sweep.storage=...``) and Optuna's warnings carry no password either, and
:func:`masked_stderr` does the same for what Hydra writes to stderr (a failed job's overrides).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator, TextIO

from hydra.types import RunMode
from omegaconf import DictConfig

from sweeps.storage._url import mask_text

__all__ = ["JobOutput", "mask_file", "masked_log_records", "masked_stderr"]

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def mask_file(path: Path) -> None:
    """Rewrites ``path`` with every URL password masked, where it exists and holds one."""
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return
    masked = mask_text(text)
    if masked != text:
        path.write_text(masked)


@contextlib.contextmanager
def masked_log_records() -> Iterator[None]:
    """Every log record created meanwhile has its message's URL passwords masked."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's business, not ours
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


class _Masking:
    """A text stream that masks URL passwords in each write (Hydra writes whole lines)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(mask_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def masked_stderr() -> Iterator[None]:
    """stderr with URL passwords masked meanwhile: Hydra writes a failed job's overrides and traceback there."""
    saved = sys.stderr
    sys.stderr = _Masking(saved)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr = saved


class _Tee:
    """A text stream that writes through to ``stream`` and logs each complete line to ``logger``.

    A line rewritten in place with carriage returns (a progress bar) is logged as it was left."""

    def __init__(self, stream: TextIO, logger: logging.Logger, level: int) -> None:
        self.stream, self.logger, self.level, self.pending = stream, logger, level, ""

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._log(line)
        return written

    def _log(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line:
            self.logger.log(self.level, mask_text(line))

    def close_line(self) -> None:
        self._log(self.pending)
        self.pending = ""

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, buffer, ...: the real stream's
        return getattr(self.stream, name)


class JobOutput:
    """Inside one Hydra job (``hydra_cfg`` is ``HydraConfig.get()``): masks the files Hydra wrote for
    it, and copies stdout and stderr into the job's log file while the block runs.

    Hydra's job logging (``hydra/job_logging=default``) writes the file; with ``hydra/job_logging=none``
    or ``disabled`` there is no file and nothing is copied. ``hydra.output_subdir=null`` leaves out
    ``.hydra/``."""

    def __init__(self, hydra_cfg: DictConfig) -> None:
        self.hydra_cfg = hydra_cfg
        self.tees: list[_Tee] = []
        self.streams: tuple[TextIO, TextIO] | None = None
        self.logger: logging.Logger | None = None
        self.log_files: list[str] = []
        self.fresh = True

    def __enter__(self) -> JobOutput:
        self._mask_hydra_files()
        files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
        self.log_files = [h.baseFilename for h in files]
        # A log file that already holds lines belongs to an earlier run in the same folder (same second).
        self.fresh = all(Path(f).stat().st_size == 0 for f in self.log_files if Path(f).exists())
        if not files:
            return self
        # A logger outside the hierarchy: only the file gets these lines (the console already has them).
        self.logger = logging.Logger("sweeps", logging.INFO)
        for handler in files:
            self.logger.addHandler(handler)
        self.streams = (sys.stdout, sys.stderr)
        self.tees = [_Tee(sys.stdout, self.logger, logging.INFO), _Tee(sys.stderr, self.logger, logging.WARNING)]
        sys.stdout, sys.stderr = self.tees  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.streams is None:
            return
        for tee in self.tees:
            tee.close_line()
            tee.flush()
        sys.stdout, sys.stderr = self.streams
        for handler in list(self.logger.handlers if self.logger else []):
            handler.flush()
            self.logger.removeHandler(handler)

    def remove(self) -> None:
        """Removes what Hydra wrote for this job (``.hydra/``, the log file, then the folders left empty,
        up to the current folder), where the job folder holds nothing else: for a run refused as bad input."""
        if not self.fresh:
            return
        hydra_cfg = self.hydra_cfg
        folder = Path(hydra_cfg.runtime.output_dir)
        ours = {Path(f).name for f in self.log_files if Path(f).parent == folder}
        if hydra_cfg.output_subdir is not None:
            ours.add(str(hydra_cfg.output_subdir))
        try:
            if not folder.is_dir() or {p.name for p in folder.iterdir()} - ours:
                return
            for name in ours:
                path = folder / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            if hydra_cfg.mode == RunMode.MULTIRUN:
                _remove_if_only(Path(str(hydra_cfg.sweep.dir)), {"multirun.yaml"}, keep=folder)
            _remove_empty_up_to_cwd(folder)
        except OSError:
            return  # best effort: a folder someone else writes into stays

    def _mask_hydra_files(self) -> None:
        hydra_cfg = self.hydra_cfg
        if hydra_cfg.output_subdir is not None:
            folder = Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir)
            for name in HYDRA_FILES:
                mask_file(folder / name)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            mask_file(Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml")


def _remove_if_only(folder: Path, names: set[str], keep: Path) -> None:
    """Removes ``folder`` where it holds only ``names`` and ``keep`` (a multirun's sweep folder whose
    only job is the refused one)."""
    if not folder.is_dir() or {p.name for p in folder.iterdir()} - names - {keep.name}:
        return
    for name in names:
        (folder / name).unlink(missing_ok=True)


def _remove_empty_up_to_cwd(folder: Path) -> None:
    cwd = Path.cwd().resolve()
    folder = folder.resolve()
    while folder != cwd and cwd in folder.parents:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            return
        folder = folder.parent
