"""Checks of the places a command will write to, made before any training starts.

A folder that cannot be created (a regular file is in the way) or written to (read-only, no permission) is
reported as one line (:class:`~harness.core.errors.UsageError`, exit 2) instead of a traceback after hours
of training. Writability is probed the only reliable way: by creating and removing a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or the nearest ancestor that exists (as a file or folder)."""
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def check_output_dir(path: Path, flag: str = "--out", *, given: str | None = None) -> None:
    """Raise UsageError unless ``path`` is, or can be created as, a folder this process can write in.

    Nothing is created: a missing folder is checked through its nearest existing ancestor. ``given`` is
    what the user typed (default ``path``), for the message."""
    path = Path(path).expanduser()
    shown = f"{flag} {given or path}"
    if path.exists() and not path.is_dir():
        raise UsageError(f"{shown}: '{path}' is a file, not a folder; give a folder path")
    existing = _existing_ancestor(path)
    if not existing.is_dir():
        raise UsageError(f"{shown}: '{existing}' is a file, so no folder can be made under it; give another path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".bench-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"{shown}: cannot write in '{existing}' ({exc.strerror or type(exc).__name__}); "
            f"choose a writable folder or fix its permissions"
        ) from None


def check_output_file(path: Path, flag: str) -> None:
    """Raise UsageError unless the file ``path`` can be written (its folder is writable, it is no folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path}: '{path}' is a folder; give a file path")
    check_output_dir(path.parent, flag, given=str(path))


#: the folders bench makes under ``--cache-dir`` and ``--out``: a file there is refused before anything runs
CACHE_FOLDERS = ("datasets", "artifacts", "jobs")
OUT_FOLDERS = ("failed",)


def check_run_dirs(request: Any) -> None:
    """The folders a run writes to: ``--out`` (records, ``failed/``) and ``--cache-dir`` (``datasets/``,
    ``artifacts/``, ``jobs/``); a file where one of those folders should be is named, with what to do."""
    for flag, root, subfolders in (
        ("--out", request.out, OUT_FOLDERS),
        ("--cache-dir", request.cache_dir, CACHE_FOLDERS),
    ):
        check_output_dir(root, flag)
        for name in subfolders:
            folder = Path(root).expanduser() / name
            if folder.exists() and not folder.is_dir():
                raise UsageError(
                    f"{flag} {root}: '{folder}' is a file where bench keeps its {name}/ folder; "
                    f"move or remove that file, or choose another {flag}"
                )
