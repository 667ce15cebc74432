"""Atomic file writes: a reader never sees a half-written record, artifact or checkpoint.

Files get the mode an ordinary ``open(path, "w")`` would give them (0666 less the user's umask), not the
0600 of the temporary file they are written through. A write that fails (a full disk, a quota, a read-only
filesystem, no permission, a file where a folder should be) leaves no temporary file behind and the file it
would have replaced as it was, and raises one :class:`~harness.core.errors.StorageError` line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import torch

from harness.core.errors import storage_error


@lru_cache(maxsize=1)
def umask() -> int:
    """The process's umask, read once without changing it where the system allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once (first call, before any worker threads)
    os.umask(mask)
    return mask


def make_folder(folder: Path) -> None:
    """``mkdir -p``, with a StorageError line for a file in the way, a full disk or no permission."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, _blocking(folder), "create the folder") from None


def _blocking(folder: Path) -> Path:
    """The file that is in the way of ``folder`` (an ancestor that is no folder), else ``folder``."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            return parent
    return folder


def _atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise storage_error(exc, path) from None
        if isinstance(exc, RuntimeError) and _is_disk_full(exc):  # torch.save reports a failed write so
            raise storage_error(OSError(errno.ENOSPC, "No space left on device"), path) from None
        raise


def _is_disk_full(exc: RuntimeError) -> bool:
    text = str(exc).lower()
    return "no space left" in text or ("file write failed" in text and "pytorchstreamwriter" in text)


def set_aside(path: Path, suffix: str = ".damaged") -> Path | None:
    """Move a file that cannot be trusted out of the way (``x.pt`` -> ``x.pt.damaged``, replacing an earlier
    one), so that nothing tries it again; None when it cannot be moved (then it is removed if possible)."""
    target = path.with_name(path.name + suffix)
    try:
        os.replace(path, target)
        return target
    except OSError:
        try:
            path.unlink()
        except OSError:
            pass
        return None


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))
