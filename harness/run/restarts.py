"""A stage about to train from its first epoch while an earlier run's checkpoint of it exists (a rerun without
``--resume`` after an interruption): one warning that says so and how to continue instead, before the first
epoch replaces the checkpoint.

The runners the run layer trains with (:class:`RestartWarningRunner`, and the sweep's jobs) say it; the
training code (:mod:`harness.train.executor`, which decides stage keys) is not changed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.core.errors import warn
from harness.train.executor import StageRunner, StageWork
from harness.train.stage import TrainedStage


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch after which the checkpoint at ``path`` was written; None when it cannot be read as one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # unreadable or not a zip-format file: the epoch is not known
        return None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    return epoch if isinstance(epoch, int) else None


def restart_text(label: str, path: Path) -> str:
    """``LABEL: a checkpoint of epoch K exists; --resume continues from it (...)``."""
    epoch = checkpoint_epoch(path)
    what = f"a checkpoint of epoch {epoch}" if epoch is not None else f"a checkpoint ({path.name}, unreadable)"
    return (
        f"{label}: {what} exists; --resume continues from it (without it this run trains the stage from epoch "
        f"1 and replaces the checkpoint after that epoch)"
    )


class RestartWarningRunner(StageRunner):
    """A stage runner that warns before a stage trains from scratch beside a checkpoint of it (no ``--resume``,
    no ``--retrain``: a retrain means to start again); on the main rank only when several train together."""

    def train(self, work: StageWork) -> TrainedStage:
        path = self.store.checkpoint_path(work.stage.name, work.key)
        main = self.env.world is None or self.env.world.is_main
        if main and not self.resume and not self.retrain and path.exists():
            warn(restart_text(work.label, path))
        return super().train(work)
