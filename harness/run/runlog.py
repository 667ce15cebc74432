"""Feeding a run's loggers: :class:`RunLogs`, a reporter that passes the engine's epochs on to them.

:func:`harness.run.execute.execute` hands the engine a :class:`RunLogs` in place of its reporter: every
event still reaches that reporter (progress bars, epoch lines), and each epoch's row also goes, with the
label of the stage that trains, to the loggers of the (method, seed) being run (:meth:`RunLogs.begin` ...
:meth:`RunLogs.end`). Per batch the loggers get nothing.

The loggers run on one thread of their own, fed through a queue, in order: training never waits for a
logger, and a logger that raises (or cannot be built) is reported once, as one ``bench: warning:`` line,
and switched off for the rest of this :func:`execute`; the run and its record go on. :meth:`RunLogs.close`
waits for the queue to drain (at most :data:`DRAIN_S` seconds, then says what may be incomplete).

Epochs a run did not train in this process (a sweep's workers trained them, or they were trained before
a ``--resume``) are sent from the stage's stored history when the run ends (``EpochRow.replayed``), so a
logger sees every epoch of every stage the run trained; stages reused from the cache belong to the run
that trained them and are not sent again.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from harness.core.progress import Reporter
from harness.run.loggers import EpochRow, Logger, LoggerSet, RunContext, RunResult

DRAIN_S = 60.0  # how long the end of a run waits for its loggers to finish writing

_STOP = object()


class RunLogs(Reporter):
    """A reporter that forwards every event to ``inner`` and each epoch to the active run's loggers."""

    def __init__(self, inner: Reporter, loggers: LoggerSet, *, warn: Callable[[str], None] | None = None) -> None:
        super().__init__(inner.console)
        self.inner = inner
        self.loggers = loggers
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.off: set[str] = set()  # loggers that failed: reported once, then skipped (touched by the thread only)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._active: list[tuple[str, Logger | None]] | None = None
        self._stage = ("", 0)
        self._step = 0
        self._seen: set[tuple[str, int]] = set()

    # ---- the run being logged -------------------------------------------------------------------------

    def begin(self, context: RunContext) -> None:
        """Start logging one (method, seed); its loggers are built (and started) on the logger thread."""
        if not self.loggers.entries:
            return
        self._active = [(name, None) for name, _ in self.loggers.entries]
        self._step, self._seen = 0, set()
        self._submit(self._start, context)

    def end(self, record: Mapping[str, Any], path: Path | None, trained: Iterable[tuple[str, list[dict]]] = ()) -> None:
        """The run ended with ``record`` (written to ``path``). ``trained``: (label, history) of every stage
        trained for it; epochs not seen live are sent now, then the record."""
        if self._active is None:
            return
        for label, history in trained:
            for row in history:
                if (label, int(row.get("epoch", 0))) not in self._seen:
                    self._epoch(label, len(history), row, replayed=True)
        self._submit(self._finish, RunResult(record, path))
        self._active = None

    def close(self, wait: float | None = None) -> None:
        """Wait (at most ``wait`` s, default :data:`DRAIN_S`) until every logger has written what it was sent,
        then stop the thread."""
        if self._thread is None:
            return
        wait = DRAIN_S if wait is None else wait
        self._queue.put(_STOP)
        self._thread.join(wait)
        if self._thread.is_alive():
            self.warn(
                f"bench: warning: the loggers were still writing after {wait:.0f} s; what they wrote "
                f"may be incomplete (the records are complete)"
            )
        self._thread = None

    # ---- Reporter: everything to the inner reporter, epochs also to the loggers ----------------------

    def note(self, message: str) -> None:
        self.inner.note(message)

    def start_stage(self, label: str, epochs: int, batches: int, completed: int = 0) -> None:
        self._stage = (label, epochs)
        self.inner.start_stage(label, epochs, batches, completed)

    def advance_batch(self, seen: int, loss_sums: dict[str, torch.Tensor], correct: torch.Tensor) -> None:
        self.inner.advance_batch(seen, loss_sums, correct)

    def end_epoch(self, row: dict) -> None:
        self.inner.end_epoch(row)
        if self._active is not None:
            self._epoch(*self._stage, row, replayed=False)

    def end_stage(self) -> None:
        self.inner.end_stage()

    # ---- the logger thread ------------------------------------------------------------------------------

    def _epoch(self, label: str, epochs: int, row: dict, *, replayed: bool) -> None:
        epoch = int(row.get("epoch", 0))
        self._seen.add((label, epoch))
        self._step += 1
        values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._submit(self._log, EpochRow(label, epoch, epochs, self._step, values, replayed))

    def _submit(self, call: Callable[[Any], None], arg: Any) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="bench-loggers", daemon=True)
            self._thread.start()
        self._queue.put((self._active, call, arg))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            active, call, arg = item
            call((active, arg))

    def _each(self, active: list, what: str, act: Callable[[int, str, Logger | None], None]) -> None:
        for i, (name, logger) in enumerate(active):
            if name in self.off:
                continue
            try:
                act(i, name, logger)
            except BaseException as exc:  # a logger never takes the run down, whatever it raises
                self.off.add(name)
                text = str(exc).strip().splitlines()
                self.warn(
                    f"bench: warning: logger '{name}' failed in {what} ({type(exc).__name__}: "
                    f"{text[0] if text else ''}); it is off from now on; training goes on"
                )

    def _start(self, job: tuple[list, RunContext]) -> None:
        active, context = job
        classes = dict(self.loggers.entries)

        def start(i: int, name: str, _: Logger | None) -> None:
            logger = classes[name]()
            active[i] = (name, logger)
            logger.start_run(context)

        self._each(active, "start_run", start)

    def _log(self, job: tuple[list, EpochRow]) -> None:
        active, row = job
        self._each(active, "log_epoch", lambda i, name, logger: logger.log_epoch(row) if logger else None)

    def _finish(self, job: tuple[list, RunResult]) -> None:
        active, result = job
        self._each(active, "finish_run", lambda i, name, logger: logger.finish_run(result) if logger else None)


def run_context(
    *,
    name: str,
    method: dict[str, Any],
    arch: str,
    dataset: str,
    seed: int,
    recipe: dict[str, Any],
    teacher: str | None,
    out: Path,
) -> RunContext:
    """The :class:`RunContext` of one (method, seed): ``method`` is ``Method.config()``, ``recipe``
    ``Recipe.as_dict()``."""
    now = datetime.now(timezone.utc)
    options = dict(method.get("options") or {})
    params: dict[str, str | int | float | bool] = {
        "method": method["name"],
        "arch": arch,
        "dataset": dataset,
        "seed": seed,
        "teacher": teacher or "",
    }
    params.update({f"recipe.{k}": _param(v) for k, v in recipe.items()})
    params.update({f"opt.{k}": _param(v) for k, v in options.items()})
    return RunContext(
        name=name,
        id=f"{name}__{now.strftime('%Y%m%d-%H%M%S')}-{int(time.time_ns() % 10**6):06d}",
        method=method["name"],
        arch=arch,
        dataset=dataset,
        seed=seed,
        recipe=str(recipe.get("name")),
        teacher=teacher,
        options=options,
        params=params,
        out=out,
        started=now.isoformat(timespec="seconds"),
    )


def _param(value: Any) -> str | int | float | bool:
    return value if isinstance(value, (str, int, float, bool)) else str(value)
