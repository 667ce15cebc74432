"""A stage's progress and its checkpoints: saved after every epoch, verified before a stage resumes from one.

A checkpoint holds the objective's and the optimiser's state, the RNG states and the :class:`Progress` (the
history, the epochs and seconds done, the selected weights so far), with the digest of its content; an
interrupted stage resumes after its last finished epoch (an epoch interrupted half-way is replayed from its
start: its batches are a function of (seed, epoch) only). A damaged checkpoint is set aside with one warning
and the stage starts from scratch (:func:`resume_state`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core.errors import one_line, warn
from harness.core.identity import state_digest
from harness.core.io import atomic_torch_save, set_aside
from harness.core.recipes import Recipe
from harness.train.artifacts import mismatch


@dataclass
class Progress:
    """Where a stage's training stands after its finished epochs: their history rows, their count, their
    seconds, and the weights of the best epoch so far (``best_state``, by the stage's selection score)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    seconds: float = 0.0
    best_state: dict[str, torch.Tensor] | None = None
    best_score: float = -math.inf
    resumed_from_epoch: int = 0

    @classmethod
    def of_checkpoint(cls, state: dict[str, Any] | None) -> Progress:
        """The progress a verified checkpoint state holds (:func:`resume_state`); a fresh one for None."""
        if state is None:
            return cls()
        return cls(
            state["history"],
            state["epoch"],
            state["seconds"],
            state.get("best_state"),
            state.get("best_score", -math.inf),
            resumed_from_epoch=state["epoch"],
        )

    def finish_epoch(
        self,
        row: dict[str, Any],
        seconds: float,
        score: float | None,
        keep: Callable[[], dict[str, torch.Tensor]] | None,
    ) -> None:
        """Add a finished epoch's ``row`` and ``seconds``; with a ``score`` above the best so far, keep a copy
        of the weights ``keep()`` returns."""
        self.seconds += seconds
        self.history.append(row)
        self.epoch = row["epoch"]
        if score is not None and keep is not None and score > self.best_score:
            self.best_score, self.best_state = score, {k: v.detach().clone() for k, v in keep().items()}


def save_checkpoint(
    path: Path, objective: nn.Module, optimizer: torch.optim.Optimizer, progress: Progress, device: torch.device
) -> None:
    """The state to resume after ``progress``'s last epoch, with its content's digest, written atomically."""
    saved = {
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": progress.history,
        "epoch": progress.epoch,
        "seconds": progress.seconds,
        "best_state": progress.best_state,
        "best_score": progress.best_score,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    atomic_torch_save({**saved, "digest": state_digest(saved)}, path)


def resume_state(
    checkpoint: Path | None,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    label: str,
    device: torch.device,
) -> dict | None:
    """The state of a verified checkpoint, applied to ``objective``, ``optimizer`` and the RNGs; None when
    there is none. A checkpoint that cannot be trusted (unreadable, truncated, a digest that is not its
    content's, weights or optimiser state that do not fit) is one ``bench: warning:`` line naming the file,
    which is moved aside (``.damaged``), and None: the stage starts from scratch, never from a bad state."""
    if checkpoint is None or not checkpoint.exists():
        return None
    try:
        state = torch.load(checkpoint, weights_only=False, map_location=device)
    except Exception as exc:
        _unusable(checkpoint, f"unreadable ({one_line(exc)})", label)
        return None
    fields = ("objective", "optimizer", "history", "epoch", "seconds", "rng_cpu", "digest")
    if not isinstance(state, dict) or any(f not in state for f in fields):
        _unusable(checkpoint, f"not a bench checkpoint (it needs {', '.join(fields)})", label)
        return None
    stored = state.pop("digest")
    if state_digest(state) != stored:
        _unusable(checkpoint, "its content's digest is not the one stored in it (damaged)", label)
        return None
    problem = mismatch(objective.state_dict(), state["objective"])
    if problem is None and not (isinstance(state["epoch"], int) and 0 < state["epoch"] <= recipe.epochs):
        problem = f"its epoch {state['epoch']!r} is not within the stage's {recipe.epochs} epochs"
    if problem:
        _unusable(checkpoint, problem, label)
        return None
    before = {k: v.detach().clone() for k, v in objective.state_dict().items()}
    fresh = optimizer.state_dict()
    try:
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
    except Exception as exc:  # nothing of it is kept: the stage starts from its initial weights
        objective.load_state_dict(before)
        optimizer.load_state_dict(fresh)
        _unusable(checkpoint, f"it does not fit ({one_line(exc)})", label)
        return None
    return state


def _unusable(checkpoint: Path, reason: str, label: str) -> None:
    moved = set_aside(checkpoint)
    where = f"moved aside to {moved.name}" if moved else "removed"
    warn(f"checkpoint {checkpoint} of {label} cannot be resumed from: {reason}; {where}, the stage starts from scratch")
    return None
