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
    """A dataset cannot be found locally nor downloaded."""


def unknown_name(kind: str, name: str, available: Iterable[str]) -> UsageError:
    """An error for an unknown name that suggests the closest match and lists what exists."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UsageError(f"unknown {kind} '{name}'.{hint} Available: {', '.join(names)}")
