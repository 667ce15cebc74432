"""Which files a piece of code reads: the files a dataset's ``build`` opened outside the sources it declared.

A decoded-data cache is named after what its reader declares it reads (:func:`harness.api.cached`'s
``source``); a reader that reads something else would serve the tensors of one source for another. While
:func:`watching` is active, every file opened for reading in this process (any thread) through Python's
``open`` / ``os.open`` is noted (an audit hook, :func:`sys.addaudithook`); :func:`undeclared` keeps the ones
that are data: not Python's own files (modules, the interpreter's and the packages' folders), not system
files (``/proc``, ``/sys``, ``/dev``, ``/etc``), not files the code wrote itself, not under a declared source.
Files read by C code that bypasses Python's ``open`` are not seen: declaring ``source`` stays the rule.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: suffixes of Python's own files (modules, compiled modules, extension modules, path files)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so", ".pth")
SYSTEM_ROOTS = ("/proc", "/sys", "/dev", "/etc")


@dataclass
class Reads:
    """The files opened while watching: for reading, and for writing (a file the code wrote, then read back,
    is its own product, not a source)."""

    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)


_watching: list[Reads] = []
_lock = threading.Lock()
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _watching:
        return
    try:  # an audit hook must never fail the open it observes
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
        with _lock:
            for reads in _watching:
                (reads.written if writes else reads.read).add(os.fsdecode(path))
    except Exception:  # noqa: BLE001
        pass


@contextmanager
def watching() -> Iterator[Reads]:
    """Note the files opened in this process until the block ends."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        reads = Reads()
        _watching.append(reads)
    try:
        yield reads
    finally:
        with _lock:
            _watching.remove(reads)


def _python_roots() -> list[Path]:
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *sysconfig.get_paths().values(),
        *site.getsitepackages(),
        site.getusersitepackages(),
    }
    return [Path(p).resolve() for p in paths if p]


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def undeclared(reads: Reads, sources: Iterable[Path]) -> list[str]:
    """The data files of ``reads`` that are under none of ``sources`` (sorted, as given to ``open``). A file
    reached through a link inside a source (a class folder that links elsewhere) is under it: the source's
    key lists the files below its links (:func:`harness.core.identity.source_identity`)."""
    sources = list(sources)
    allowed = [Path(s).expanduser().resolve() for s in sources] + _python_roots()
    linked = [Path(os.path.abspath(Path(s).expanduser())) for s in sources]
    allowed += [Path(root) for root in SYSTEM_ROOTS]
    written = {Path(w).resolve() for w in reads.written}
    found = []
    for name in sorted(reads.read):
        path = Path(name).resolve()
        if (
            path.suffix in CODE_SUFFIXES
            or path in written
            or path.is_dir()
            or _under(path, allowed)
            or _under(Path(os.path.abspath(name)), linked)
        ):
            continue
        found.append(name)
    return found
