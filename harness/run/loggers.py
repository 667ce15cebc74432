"""What a metrics logger is written against: :class:`Logger`, the run it logs and what it receives.

A logger (``bench_register_loggers``, ``--log NAME[,NAME]``) shows a run's numbers where people already
look (TensorBoard, MLflow, W&B, trackio, a JSON-lines file). It receives, for every (method, seed) of a run:
:meth:`Logger.start_run` with the run's :class:`RunContext`, :meth:`Logger.log_epoch` with every epoch's
row of every stage the run trains (:class:`EpochRow`), and :meth:`Logger.finish_run` with the record
(:class:`RunResult`, also for a failed run). Nothing per batch.

Loggers are presentation: they never enter a stage's identity, and they run on a thread of their own
(:mod:`harness.run.runlog`), so a slow or failing logger never slows or fails the training: its first
error is reported as one ``bench: warning:`` line and the logger is switched off for the rest of the
invocation. Everything here is exported by :mod:`harness.api`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.core.extras import import_extra

#: the logger every run writes, whatever ``--log`` says (one JSON line per epoch, beside the records)
ALWAYS = ("jsonl",)


@dataclass(frozen=True)
class RunContext:
    """The run a logger logs: one (method, seed) of a `bench run`.

    ``name`` is the record's name without its key (``<dataset>__<arch>__<method>__<recipe>__seed<N>``, known
    before training); ``id`` adds the start time, unique per attempt (a folder name for event files);
    ``params`` is the flat configuration trackers show as parameters (method, arch, dataset, seed, recipe and
    its numbers, teacher, method options as ``opt.<name>``)."""

    name: str
    id: str
    method: str
    arch: str
    dataset: str
    seed: int
    recipe: str
    teacher: str | None
    options: Mapping[str, Any]
    params: Mapping[str, str | int | float | bool]
    out: Path
    started: str  # ISO 8601, UTC


@dataclass(frozen=True)
class EpochRow:
    """One epoch of one stage: ``stage`` is its label (``baseline[resnet20]``, ``kd``), ``epoch`` 1-based
    of ``epochs``, ``step`` counts the epochs logged in this run (1, 2, ... across its stages: for trackers
    that want one increasing step), ``values`` the engine's numbers (``lr``, ``train_loss``, ``train_acc``,
    ``test_acc``, ``test_loss``, ``images_per_s``, ...). ``replayed``: the epoch was trained elsewhere (a
    sweep's worker, or before a ``--resume``) and is sent from the stage's stored history when the run ends."""

    stage: str
    epoch: int
    epochs: int
    step: int
    values: Mapping[str, float]
    replayed: bool = False


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its record (``status`` ``ok`` with ``metrics``, or ``failed`` with ``error``) and
    the record's file."""

    record: Mapping[str, Any]
    path: Path | None

    @property
    def status(self) -> str:
        return str(self.record.get("status", "ok"))

    @property
    def metrics(self) -> dict[str, float]:
        """The record's scalar metrics (``top1_last``, ``params_deployed``, ``latency_ms.batch1``, ...)."""
        return scalars(self.record.get("metrics") or {})


class Logger:
    """Base class of a metrics logger; a fresh instance logs each (method, seed) of a run.

    Override what you need; every method is optional. ``requires = (module, extra)`` names an optional
    dependency: ``--log NAME`` without it is refused before training with one line naming the extra
    (:meth:`check`)."""

    requires: ClassVar[tuple[str, str] | None] = None

    @classmethod
    def check(cls, name: str) -> None:
        """Called once before anything trains: raise :class:`~harness.core.errors.UsageError` when this
        logger cannot work (by default: its ``requires`` module is not installed)."""
        if cls.requires is not None:
            module, extra = cls.requires
            import_extra(module, extra, f"--log {name}")

    def start_run(self, run: RunContext) -> None:
        pass

    def log_epoch(self, row: EpochRow) -> None:
        pass

    def finish_run(self, result: RunResult) -> None:
        pass


@dataclass(frozen=True)
class LoggerSet:
    """The loggers of a run, resolved and checked: (name, class) in order, the always-on ones first."""

    entries: tuple[tuple[str, type[Logger]], ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.entries]


def resolve_loggers(registry: Any, names: list[str]) -> LoggerSet:
    """The loggers ``--log`` asks for plus :data:`ALWAYS`, each resolved and checked (an unknown name or a
    missing extra is a UsageError, before training). An always-on logger that is not registered (its
    plugin disabled with ``BENCH_DISABLE_PLUGINS``) is left out."""
    entries: list[tuple[str, type[Logger]]] = []
    for name in dict.fromkeys([*ALWAYS, *names]):
        if name in ALWAYS and name not in names and name not in registry:
            continue
        cls = registry.resolve(name).obj
        cls.check(name)
        entries.append((name, cls))
    return LoggerSet(tuple(entries))


def scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a nested mapping, flattened with dots (``{"latency_ms": {"batch1": 2.0}}`` ->
    ``{"latency_ms.batch1": 2.0}``); booleans, strings and None are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalars(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def metric_name(*parts: str) -> str:
    """A metric name trackers accept (letters, digits, ``_ - . /`` and spaces): ``metric_name("baseline[resnet8]",
    "test_acc")`` -> ``baseline-resnet8/test_acc``."""
    cleaned = [re.sub(r"[^A-Za-z0-9_.\- ]+", "-", p).strip("-") for p in parts]
    return "/".join(p for p in cleaned if p)
