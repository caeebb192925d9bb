"""The folders a sweep writes to, checked before they are needed.

A run writes its exports (``sweep.export_dir/<study>``) and its artifacts (``sweep.artifact_dir``,
by default beside the storage). Both are checked when a run starts, before anything is written (a
bad one is a config error: exit 2), and again right before the test vault opens, so that the one
opening is never spent on a run whose results then cannot be written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sweeps._errors import ConfigError
from sweeps.storage._url import artifact_dir

__all__ = ["check_destinations", "unwritable"]


def unwritable(folder: Path) -> str | None:
    """Why files cannot be written in ``folder``, or None if they can.

    Creates the missing folders and a probe file, then removes what it created, so that the check
    leaves nothing behind. Safe when several commands check the same folder at once: a folder that
    another one creates meanwhile is not this check's to remove (so an empty one may stay for the run
    to use), and one that another check removes meanwhile is probed again.
    """
    for _ in range(_ATTEMPTS - 1):
        try:
            return _probe(folder)
        except FileNotFoundError:  # another command's check removed a folder it had created: look again
            continue
    try:
        return _probe(folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__


_ATTEMPTS = 5


def _probe(folder: Path) -> str | None:
    """One attempt of :func:`unwritable`; raises FileNotFoundError if a folder vanished meanwhile."""
    created: list[Path] = []
    try:
        missing, path = [], folder
        while not path.exists() and path != path.parent:
            missing.append(path)
            path = path.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:  # another command created it at the same moment: it is theirs
                continue
            created.append(path)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".sweeps-write-test-")
        os.close(handle)
        os.unlink(probe)
        return None
    except FileNotFoundError:
        raise
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        for path in reversed(created):
            try:
                path.rmdir()
            except OSError:  # not empty: another command is probing or writing in it
                pass


def check_destinations(export_dir: str | Path, study_name: str, storage: str, configured_artifacts: str | None) -> None:
    """Checks that the export folder of ``study_name`` and the artifact folder can be written.

    Raises:
        ConfigError: one of them cannot be created or written, naming the key and the folder.
    """
    artifacts = artifact_dir(storage, configured_artifacts)
    where = "" if configured_artifacts else " (default: beside the storage)"
    for key, folder, note in (("sweep.export_dir", Path(export_dir) / study_name, ""),
                              ("sweep.artifact_dir", artifacts, where)):
        problem = unwritable(folder)
        if problem is not None:
            raise ConfigError(f"{key}{note}: cannot write to {str(folder)!r} ({problem}); set {key} to a folder "
                              "this process can create and write")
