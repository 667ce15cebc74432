"""Fault injection for tests that run ``bench`` in a fresh process: put this folder first on ``PYTHONPATH``
and set ``BENCH_TEST_KILL_AT=EPOCH:BATCH[:SIGNAL]`` (see :func:`conftest.kill_at`); the process (and its
workers, which inherit both) sends itself SIGNAL (default KILL) just before it trains batch BATCH (0-based) of
epoch EPOCH (1-based). Nothing of it is in the harness: the training stream is wrapped from outside, once
``harness.data.pipeline`` is imported (not before: a numerics profile must pin torch's kernels first).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

KILL_ENV = "BENCH_TEST_KILL_AT"
TARGET = "harness.data.pipeline"


def kill_point() -> tuple[int, int, signal.Signals] | None:
    raw = os.environ.get(KILL_ENV)
    if not raw:
        return None
    epoch, batch, *name = raw.split(":")
    return int(epoch), int(batch), signal.Signals[f"SIG{name[0] if name else 'KILL'}"]


def wrap(pipeline: ModuleType, point: tuple[int, int, signal.Signals]) -> None:
    """``TrainStream.epoch`` of ``pipeline`` that kills the process at ``point``."""
    original = pipeline.TrainStream.epoch

    def epoch(self: Any, epoch: int, start_batch: int = 0) -> Iterator[Any]:
        for b, batch in enumerate(original(self, epoch, start_batch), start=start_batch):
            if (epoch + 1, b) == point[:2]:
                os.kill(os.getpid(), point[2])
            yield batch

    pipeline.TrainStream.epoch = epoch


class Wrapper(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds :data:`TARGET` with the other finders, runs it, then wraps its stream."""

    def __init__(self, point: tuple[int, int, signal.Signals]) -> None:
        self.point = point
        self.spec: importlib.machinery.ModuleSpec | None = None

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is not self and (spec := getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)):
                self.spec = spec
                return importlib.machinery.ModuleSpec(fullname, self, origin=spec.origin)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        assert self.spec is not None and self.spec.loader is not None
        return self.spec.loader.create_module(self.spec)

    def exec_module(self, module: ModuleType) -> None:
        assert self.spec is not None and self.spec.loader is not None
        module.__spec__, module.__file__ = self.spec, self.spec.origin
        self.spec.loader.exec_module(module)
        wrap(module, self.point)


if (point := kill_point()) is not None:
    sys.meta_path.insert(0, Wrapper(point))
