"""The divergence guard: a training stage stops at its first non-finite loss, naming where it went wrong."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from harness.core.errors import TrainingDiverged


class DivergenceGuard:
    """Stops a stage at the first non-finite loss with :class:`TrainingDiverged` (label, epoch, batch, loss),
    in training and in the evaluation after each epoch (:meth:`evaluation`).

    On CPU every batch's summed loss is checked before ``backward`` (reading a CPU tensor costs no sync). On
    CUDA reading it would sync the device every batch, so the guard records the first bad batch and its loss
    terms on the device and reads them every ``CHECK_EVERY`` batches and at the end of each epoch (where the
    engine syncs anyway): the stage stops at most ``CHECK_EVERY`` batches late, and the error still names
    the first bad batch; no checkpoint is written after it.
    """

    CHECK_EVERY = 50

    def __init__(
        self,
        label: str,
        lr: float,
        batches: int,
        device: torch.device,
        before_raise: Callable[[], None] = lambda: None,
        lr_option: str = "--lr",
    ) -> None:
        """``lr_option``: what the error tells the user to lower (what sets the stage's learning rate)."""
        self.label, self.lr, self.batches, self.device = label, lr, batches, device
        self.lr_option = lr_option
        self.before_raise = before_raise  # e.g. stop the progress display, so the error line stands alone
        self.deferred = device.type == "cuda"
        self._reset()

    def _reset(self) -> None:
        self.bad_batch: torch.Tensor | None = None  # CUDA: -1 while every loss is finite
        self.bad_terms: torch.Tensor | None = None
        self.names: list[str] = []

    def batch(self, epoch: int, b: int, losses: dict[str, torch.Tensor], total: torch.Tensor) -> None:
        """Check batch ``b`` (0-based) of 0-based ``epoch``; ``total`` is the sum of ``losses``."""
        if not self.deferred:
            if not bool(torch.isfinite(total.detach())):
                values = {name: float(v.detach().float()) for name, v in losses.items()}
                self._raise(epoch, b, values)
            return
        terms = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        if self.bad_batch is None:
            self.names = list(losses)
            self.bad_batch = torch.full((), -1, dtype=torch.int64, device=total.device)
            self.bad_terms = torch.zeros_like(terms)
        newly = ~torch.isfinite(total.detach()) & (self.bad_batch < 0)
        self.bad_batch = torch.where(newly, torch.full_like(self.bad_batch, b), self.bad_batch)
        assert self.bad_terms is not None  # set with bad_batch
        self.bad_terms = torch.where(newly, terms, self.bad_terms)
        if (b + 1) % self.CHECK_EVERY == 0:
            self.flush(epoch)

    def flush(self, epoch: int) -> None:
        """Read the deferred check (CUDA); a no-op on CPU."""
        bad_batch, terms, names = self.bad_batch, self.bad_terms, self.names
        self._reset()
        if bad_batch is not None and terms is not None and int(bad_batch) >= 0:
            self._raise(epoch, int(bad_batch), dict(zip(names, terms.tolist())))

    def evaluation(self, epoch: int, row: dict[str, float]) -> None:
        """Check what the stage's evaluation after 0-based ``epoch`` measured (test losses of a classifier, every
        loss of an objective evaluated with ``evaluate="losses"``): a non-finite number stops the stage."""
        for name, value in row.items():
            if isinstance(value, (int, float)) and not math.isfinite(value):
                self.before_raise()
                raise TrainingDiverged.in_evaluation(self.label, epoch + 1, name, value, self.lr, self.lr_option)

    def _raise(self, epoch: int, b: int, values: dict[str, float]) -> None:
        bad = [(name, v) for name, v in values.items() if not math.isfinite(v)]
        name, value = bad[0] if bad else ("total", math.inf)  # finite terms whose sum overflowed
        self.before_raise()
        raise TrainingDiverged(self.label, epoch + 1, b + 1, self.batches, name, value, self.lr, self.lr_option)
