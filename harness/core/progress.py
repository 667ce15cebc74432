"""Progress reporting: rich progress bars (epoch and batch: loss, accuracy, images/s) and one line per epoch.

On a terminal, bars; elsewhere (a log file, CI) no bars and plain lines that are never wrapped: one per
epoch, and for long work outside training (first-time decoding of a dataset, loading a large file) a line
at the start and every few seconds (:func:`task`, :func:`loading`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    import torch


class Reporter:
    """Receives the engine's events. This base class prints nothing (``--quiet``)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def note(self, message: str) -> None:
        pass

    def start_stage(self, label: str, epochs: int, batches: int, completed: int = 0) -> None:
        pass

    def advance_batch(self, seen: int, loss_sums: dict[str, torch.Tensor], correct: torch.Tensor) -> None:
        pass

    def end_epoch(self, row: dict) -> None:
        pass

    def end_stage(self) -> None:
        pass


_QUIET = False


def set_quiet(quiet: bool) -> None:
    """``--quiet``: no progress for :func:`task` and :func:`loading` either."""
    global _QUIET
    _QUIET = quiet


def _stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _ignored(n: int = 1) -> None:
    """The ``advance`` of quiet progress."""


@contextmanager
def task(
    description: str, total: int, *, console: Console | None = None, every_s: float = 10.0
) -> Iterator[Callable[[int], None]]:
    """Progress of ``total`` steps of work outside training; yields ``advance(n)``.

    A transient bar on a terminal; elsewhere one line at the start and one every ``every_s`` seconds."""
    console = console or _stderr_console()
    if _QUIET:
        yield _ignored
        return
    if console.is_terminal:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            job = bar.add_task(escape(description), total=total)

            def advance_bar(n: int = 1) -> None:
                bar.advance(job, n)

            yield advance_bar
        return
    t0 = last = time.perf_counter()
    done = 0
    console.print(f"{description}: {total:,} to do", markup=False, highlight=False, soft_wrap=True)

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.perf_counter()
        if now - last >= every_s and done < total:
            last = now
            console.print(
                f"{description}: {done:,}/{total:,} ({done / max(1, total):.0%}, {now - t0:.0f} s)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    yield advance


@contextmanager
def loading(
    path: Path, description: str | None = None, *, min_bytes: int = 50_000_000, console: Console | None = None
) -> Iterator[None]:
    """Around the loading of a large file: a spinner on a terminal, one line elsewhere (files under
    ``min_bytes`` load quickly and show nothing)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0
    if _QUIET or size < min_bytes:
        yield
        return
    console = console or _stderr_console()
    text = f"{description or 'loading'} {path} ({size / 1e6:,.0f} MB)"
    if console.is_terminal:
        with console.status(escape(text)):
            yield
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        yield


class RichReporter(Reporter):
    """Two progress bars while a stage trains and one summary line per epoch.

    When the console is not a terminal (output to a file or a pipe) there are no bars, only the epoch
    lines, and no line is wrapped to the console width: a log has one line per epoch."""

    REFRESH_S = 0.5  # reading loss/accuracy from the device syncs it: do so at most this often

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress: Progress | None = None
        self.label = ""
        self._last = 0.0
        self._t0 = 0.0

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{escape(message)}[/dim]", soft_wrap=True)

    def start_stage(self, label: str, epochs: int, batches: int, completed: int = 0) -> None:
        self.label = label
        self.epochs = epochs
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.epoch_task = self.progress.add_task(escape(f"{label} epochs"), total=epochs, completed=completed, info="")
        self.batch_task = self.progress.add_task("batches", total=batches, info="")
        self._t0 = time.perf_counter()

    def advance_batch(self, seen: int, loss_sums: dict[str, torch.Tensor], correct: torch.Tensor) -> None:
        if self.progress is None:
            return
        self.progress.advance(self.batch_task)
        now = time.perf_counter()
        if now - self._last >= self.REFRESH_S:
            self._last = now
            loss = sum(float(v) for v in loss_sums.values()) / max(1, seen)
            acc = float(correct) / max(1, seen) * 100
            rate = seen / max(1e-9, now - self._t0)
            self.progress.update(self.batch_task, info=f"loss {loss:.3f} acc {acc:5.1f}% {rate:6.0f} img/s")

    def end_epoch(self, row: dict) -> None:
        if self.progress is not None:
            self.progress.advance(self.epoch_task)
            self.progress.reset(self.batch_task)
        self._t0 = time.perf_counter()
        evals = "  ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items()
            if k.startswith(("test_", "val_"))
        )
        acc = f" acc {row['train_acc']:5.1f}%" if "train_acc" in row else ""
        self.console.print(
            f"{self.label} epoch {row['epoch']}/{self.epochs}  lr {row['lr']:.4g}  loss {row['train_loss']:.4f}"
            f"{acc}  {evals}  {row['images_per_s']:.0f} img/s",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def end_stage(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
