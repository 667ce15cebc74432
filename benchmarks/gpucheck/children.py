"""Child processes with a time limit each: a crash, a hang or a CUDA error in one never stops the check.

Every child is forked from one fork server that imported torch and the harness once (``spawn`` where that
server cannot start), runs in its own process group (a timeout ends it with whatever it started) and writes
its output to its own log; what its function returns comes back as JSON.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOT_RUN = "no time left in this part's budget"


@dataclass
class Outcome:
    """What one child did: ``ok``, ``failed`` (an exception or a non-zero exit), ``timeout``, or ``not run``
    (no time left); ``value`` is what its function returned, ``error`` its first error line."""

    label: str
    status: str
    seconds: float = 0.0
    exit_code: int | None = None
    value: Any = None
    error: str | None = None


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def first_error_line(log: Path) -> str | None:
    """The first line of a child's log that says what went wrong (bench's one-line errors first)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for pattern in (r"^bench: error:", r"^\w*(Error|Exception)\b", r"\berror\b"):
        found = next((line for line in lines if re.search(pattern, line, re.IGNORECASE)), None)
        if found is not None:
            return found[:300]
    return lines[-1][:300] if lines else None


def _child(fn: Callable[..., Any], kwargs: dict[str, Any], result: str, log: str) -> None:
    """A child's body: its own process group, its output in ``log``, ``fn``'s value (or its exception as one
    line) in ``result``; exits with the value's ``exit_code`` where it has one (``bench``'s), else 0."""
    os.setpgrp()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        value = fn(**kwargs)
        payload: dict[str, Any] = {"value": value}
        code = int(value.get("exit_code", 0)) if isinstance(value, dict) else 0
    except BaseException as exc:  # noqa: BLE001 - recorded, whatever it is
        traceback.print_exc()
        payload, code = {"error": one_line(exc)}, 1
    Path(result).write_text(json.dumps(payload, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class Runner:
    """Runs module-level functions in child processes, each with a timeout and its own log under ``work``."""

    def __init__(self, work: Path, preload: Sequence[str] = ()) -> None:
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.context: Any = mp.get_context("forkserver")
        # this module first: the server then also gets this process's sys.path, which finds it
        self.context.set_forkserver_preload([__name__, *preload])
        self.count = 0
        self.order: list[tuple[str, Path]] = []

    def start(self, label: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, Path, Path, float]:
        """Start ``fn(**kwargs)``: its process, log, result file and start time."""
        self.count += 1
        stem = f"{self.count:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}"
        log, result = self.logs / f"{stem}.log", self.logs / f"{stem}.json"
        self.order.append((label, log))
        try:
            proc = self.context.Process(target=_child, args=(fn, kwargs, str(result), str(log)))
            proc.start()
        except Exception:  # noqa: BLE001 - the fork server did not start: every child spawns afresh instead
            self.context = mp.get_context("spawn")
            proc = self.context.Process(target=_child, args=(fn, kwargs, str(result), str(log)))
            proc.start()
        return proc, log, result, time.perf_counter()

    @staticmethod
    def finish(label: str, proc: Any, log: Path, result: Path, t0: float, timed_out: bool) -> Outcome:
        """Collect a child (killing its process group first when it ran out of time)."""
        if timed_out:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.join()
        seconds = round(time.perf_counter() - t0, 2)
        if timed_out:
            return Outcome(label, "timeout", seconds, None, None, f"killed after {seconds:.0f} s (its time budget)")
        payload = json.loads(result.read_text()) if result.exists() else {}
        code = proc.exitcode
        if code == 0:
            return Outcome(label, "ok", seconds, code, payload.get("value"))
        error = (
            payload.get("error")
            or first_error_line(log)
            or f"exit {code}" + (" (killed by a signal)" if code is not None and code < 0 else "")
        )
        return Outcome(label, "failed", seconds, code, payload.get("value"), error)

    def run(self, label: str, fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Outcome:
        """``fn(**kwargs)`` in a child; killed after ``timeout`` seconds (``not run`` when that is under 1)."""
        if timeout < 1:
            return Outcome(label, "not run", error=NOT_RUN)
        proc, log, result, t0 = self.start(label, fn, kwargs)
        proc.join(timeout)
        return self.finish(label, proc, log, result, t0, timed_out=proc.is_alive())

    def run_many(
        self,
        calls: list[tuple[str, Callable[..., Any], dict[str, Any]]],
        timeout: float,
        deadline: float,
        jobs: int,
        report: Callable[[Outcome], None],
    ) -> list[Outcome]:
        """Every call, ``jobs`` at a time, each killed after ``timeout`` seconds or at ``deadline``
        (``time.perf_counter()``); calls not started by then are ``not run``. Outcomes in the calls' order."""
        pending, running, done = list(enumerate(calls)), {}, {}
        while pending or running:
            while pending and len(running) < jobs and deadline - time.perf_counter() >= 1:
                i, (label, fn, kwargs) = pending.pop(0)
                running[i] = (label, *self.start(label, fn, kwargs))
            if not running:
                break
            time.sleep(0.05)
            for i, (label, proc, log, result, t0) in list(running.items()):
                now = time.perf_counter()
                late = now - t0 > timeout or now > deadline
                if not proc.is_alive() or late:
                    done[i] = self.finish(label, proc, log, result, t0, timed_out=proc.is_alive())
                    report(done[i])
                    del running[i]
        for i, (label, _, _) in pending:
            done[i] = Outcome(label, "not run", error=NOT_RUN)
            report(done[i])
        return [done[i] for i in range(len(calls))]

    def combined_log(self, limit: int = 100_000) -> str:
        """Every child's output, in order, each cut to its last ``limit`` characters."""
        parts = []
        for label, log in self.order:
            text = log.read_text(errors="replace") if log.exists() else ""
            cut = f"[... {len(text) - limit} characters cut ...]\n" if len(text) > limit else ""
            parts.append(f"===== {label} =====\n{cut}{text[-limit:]}")
        return "\n".join(parts)
