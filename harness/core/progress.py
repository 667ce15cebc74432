"""Progress reporting: rich progress bars (epoch and batch: loss, accuracy, images/s) and one line per epoch."""

from __future__ import annotations

import time

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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


class RichReporter(Reporter):
    """Two progress bars while a stage trains and one summary line per epoch."""

    REFRESH_S = 0.5  # reading loss/accuracy from the device syncs it: do so at most this often

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress: Progress | None = None
        self.label = ""
        self._last = 0.0
        self._t0 = 0.0

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{escape(message)}[/dim]")

    def start_stage(self, label: str, epochs: int, batches: int, completed: int = 0) -> None:
        self.label = label
        self.epochs = epochs
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), console=self.console, transient=True,
        )
        self.progress.start()
        self.epoch_task = self.progress.add_task(escape(f"{label} epochs"), total=epochs, completed=completed, info="")
        self.batch_task = self.progress.add_task("batches", total=batches, info="")
        self._t0 = time.perf_counter()

    def advance_batch(self, seen: int, loss_sums: dict[str, torch.Tensor], correct: torch.Tensor) -> None:
        assert self.progress is not None
        self.progress.advance(self.batch_task)
        now = time.perf_counter()
        if now - self._last >= self.REFRESH_S:
            self._last = now
            loss = sum(float(v) for v in loss_sums.values()) / max(1, seen)
            acc = float(correct) / max(1, seen) * 100
            rate = seen / max(1e-9, now - self._t0)
            self.progress.update(self.batch_task, info=f"loss {loss:.3f} acc {acc:5.1f}% {rate:6.0f} img/s")

    def end_epoch(self, row: dict) -> None:
        assert self.progress is not None
        self.progress.advance(self.epoch_task)
        self.progress.reset(self.batch_task)
        self._t0 = time.perf_counter()
        evals = "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in row.items() if k.startswith(("test_", "val_")))
        acc = f" acc {row['train_acc']:5.1f}%" if "train_acc" in row else ""
        self.progress.console.print(escape(
            f"{self.label} epoch {row['epoch']}/{self.epochs}  lr {row['lr']:.4g}  loss {row['train_loss']:.4f}"
            f"{acc}  {evals}  {row['images_per_s']:.0f} img/s"
        ))

    def end_stage(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
