"""One run of the check: its state, and how a part runs within its budget without stopping the next."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gpucheck.children import Outcome, Runner, one_line
from gpucheck.plan import PARTS, PRELOAD, Scale


class BadInput(Exception):
    """Bad input: one line on stderr, exit 2."""


@dataclass
class PartResult:
    """A part's outcome: ``ok``, ``partial`` (some rows failed), ``failed``, ``out of time``, ``skipped``
    (nothing to do here, with the reason in ``note``) or ``not run``; ``error`` is its first error line."""

    name: str
    status: str = "not run"
    seconds: float = 0.0
    budget_s: float = 0.0
    note: str = ""
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    deadline: float = field(default=0.0, repr=False)  # time.perf_counter() at which its budget ends


class Check:
    """One run of the check: its arguments and scale, work folder, child runner, deadline and results."""

    def __init__(self, args: argparse.Namespace, scale: Scale, work: Path) -> None:
        self.args, self.scale, self.work, self.device = args, scale, work, args.device
        self.runner = Runner(work, PRELOAD)
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + (args.total_s or scale.total_s)
        # a fresh artifact store (every stage trains in this check), decoded datasets shared with --cache-dir
        self.cache = work / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        shared = args.cache_dir / "datasets"
        shared.mkdir(parents=True, exist_ok=True)
        (self.cache / "datasets").symlink_to(shared.resolve(), target_is_directory=True)
        self.parts: dict[str, PartResult] = {}
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.methods: list[dict[str, Any]] = []
        self.amp = args.device == "cuda"  # bench run's default: bf16 autocast on CUDA, fp32 on a CPU
        self.cpu_bf16 = False

    def remaining(self) -> float:
        """Seconds left of the whole check."""
        return self.deadline - time.perf_counter()

    def left(self, part: PartResult) -> float:
        """Seconds left of ``part``'s budget (never past the check's)."""
        return min(part.deadline, self.deadline) - time.perf_counter()

    def say(self, line: str) -> None:
        """A progress line, with the seconds since the check started."""
        print(f"[{time.perf_counter() - self.t0:6.1f} s] {line}", flush=True)

    def report(self, part: str) -> Callable[[Outcome], None]:
        """A progress line for each child of ``part``."""

        def line(o: Outcome) -> None:
            """One child's outcome."""
            self.say(f"{PARTS[part]}. {o.label}: {o.status} ({o.seconds:.1f} s)" + (f": {o.error}" if o.error else ""))

        return line

    def run(self, part: PartResult, label: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Outcome:
        """``fn(**kwargs)`` in a child with what is left of ``part``'s budget, reported as it ends."""
        o = self.runner.run(label, fn, kwargs, self.left(part))
        self.report(part.name)(o)
        return o

    def bench_argv(self, *args: str, out: Path, cache: Path | None = None, latency: bool = False) -> list[str]:
        """``bench run`` arguments the parts share: this device, quiet, this check's cache, ``out``."""
        return [
            "run",
            *args,
            "--device",
            self.device,
            "--quiet",
            "--cache-dir",
            str(cache or self.cache),
            "--out",
            str(out),
            *([] if latency else ["--no-latency"]),
        ]


def run_part(check: Check, name: str, fn: Callable[[Check, PartResult], None]) -> PartResult:
    """One part within its budget (part f, which has none: what is left); whatever it raises becomes its
    first error line, and the check goes on."""
    budget = min(check.scale.budgets.get(name, check.remaining()), max(0.0, check.remaining()))
    part = PartResult(name, budget_s=round(budget, 1))
    check.parts[name] = part
    if budget < 1:
        part.note = "the check's total time was spent"
        return part
    check.say(f"{PARTS[name]}. {name}: budget {budget:.0f} s")
    t0 = time.perf_counter()
    part.deadline = t0 + budget
    try:
        fn(check, part)
        if part.status == "not run":
            part.status = status_of(part.rows)
    except Exception as exc:  # noqa: BLE001 - a part's own bug must not stop the next part
        part.status, part.error = "failed", one_line(exc)
    part.seconds = round(time.perf_counter() - t0, 1)
    if part.error is None:
        part.error = next((r.get("error") for r in part.rows if r.get("error")), None)
    check.say(
        f"{PARTS[name]}. {name}: {part.status} in {part.seconds:.0f} s" + (f": {part.error}" if part.error else "")
    )
    return part


def status_of(rows: list[dict[str, Any]]) -> str:
    """A part's status from its rows' (``skipped`` rows, a setting this device lacks, do not count)."""
    counted = [r["status"] for r in rows if r["status"] != "skipped"]
    if not counted:
        return "skipped" if rows else "failed"
    if all(s == "ok" for s in counted):
        return "ok"
    if "failed" in counted:
        return "partial" if "ok" in counted else "failed"
    return "out of time"
