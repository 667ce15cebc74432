"""Errors the harness reports to users as one line, with the exit code that goes with each kind."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A failure the CLI reports as one line. ``exit_code`` 1: a run failed."""

    exit_code = 1


class UsageError(BenchError):
    """Bad usage or input (unknown name, bad option, incompatible options, missing data): exit 2."""

    exit_code = 2


class PluginError(UsageError):
    """A plugin is broken or conflicts with another one."""


class DataUnavailableError(UsageError):
    """A dataset cannot be found locally nor downloaded, or its files cannot be read."""


class TrainingDiverged(BenchError):
    """A training stage met a non-finite loss: the run failed (exit 1), the message says where and what to try.

    ``batch`` 0 means the loss was met when the stage was evaluated after ``epoch`` (see :meth:`in_evaluation`).
    """

    def __init__(self, label: str, epoch: int, batch: int, batches: int, loss: str, value: float, lr: float) -> None:
        self.label, self.epoch, self.batch, self.loss, self.value = label, epoch, batch, loss, value
        where = f"at epoch {epoch}, batch {batch}/{batches}" if batch else f"in the evaluation after epoch {epoch}"
        super().__init__(
            f"{label}: loss '{loss}' is {value} {where}; the run diverged: "
            f"lower --lr (now {format_number(lr)}) or check the method's loss"
        )

    @classmethod
    def in_evaluation(cls, label: str, epoch: int, loss: str, value: float, lr: float) -> "TrainingDiverged":
        return cls(label, epoch, 0, 0, loss, value, lr)


def format_number(value: float) -> str:
    """A float as a user would type it on the command line: 0.05, 1e9, 2.5e-05 -> 2.5e-5."""
    text = f"{value:.6g}"
    mantissa, sep, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if sep else text


def unknown_name(kind: str, name: str, available: Iterable[str]) -> UsageError:
    """An error for an unknown name that suggests the closest match and lists what exists."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UsageError(f"unknown {kind} '{name}'.{hint} Available: {', '.join(names)}")
