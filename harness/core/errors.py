"""Errors the harness reports to users as one line, with the exit code that goes with each kind.

Exit codes (the CLI's, see docs/errors.md): 0 success; 1 a run failed (:class:`BenchError`); 2 bad usage or
input found before anything ran (:class:`UsageError`); 74 a file could not be written or read while working
(:class:`StorageError`: full disk, quota, read-only filesystem, permissions; ``EX_IOERR`` of sysexits.h);
130 interrupted (Ctrl-C); 143 terminated (SIGTERM, e.g. a scheduler's).
"""

from __future__ import annotations

import difflib
import errno
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: the environment variable that shows tracebacks (``bench --debug`` sets it for worker processes)
DEBUG_ENV = "BENCH_DEBUG"


class BenchError(Exception):
    """A failure the CLI reports as one line. ``exit_code`` 1: a run failed."""

    exit_code = 1


class UsageError(BenchError):
    """Bad usage or input (unknown name, bad option, incompatible options, missing data): exit 2."""

    exit_code = 2


class PluginError(UsageError):
    """A plugin is broken or conflicts with another one."""


class PluginFailed(PluginError):
    """A plugin's code raised (in a hook, a method's ``plan()``/``objective()``/``report()``, a loader, a
    factory, an executor): one line naming the plugin and the call; the exception is kept as the cause, which
    ``--debug`` (``BENCH_DEBUG=1``) prints as a traceback. ``plugin`` may be filled in by a caller that knows
    whose code it was (:meth:`owned_by`); ``arch`` names the architecture whose factory raised, if one did."""

    def __init__(self, what: str, cause: BaseException, plugin: str | None = None, arch: str | None = None) -> None:
        self.what, self.cause, self.plugin, self.arch = what, cause, plugin, arch
        super().__init__(self._text())

    def _text(self) -> str:
        who = f"plugin '{self.plugin}'" if self.plugin else "plugin code"
        return f"{who} failed in {self.what}: {one_line(self.cause)}"

    def owned_by(self, plugin: str) -> "PluginFailed":
        """This error, naming ``plugin`` when it did not name one yet."""
        if self.plugin is None:
            self.plugin = plugin
            self.args = (self._text(),)
        return self


@contextmanager
def plugin_code(what: str, plugin: str | None = None, *, arch: str | None = None) -> Iterator[None]:
    """Run plugin code: anything it raises but a :class:`BenchError` (already one line) or an interrupt becomes
    a :class:`PluginFailed` naming ``plugin`` and ``what`` was called, e.g. ``method 'kd'.plan()``."""
    try:
        yield
    except (BenchError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end bench without a word
        raise PluginFailed(what, exc, plugin, arch) from exc


class DataUnavailableError(UsageError):
    """A dataset cannot be found locally nor downloaded, or its files cannot be read."""


class StorageError(BenchError):
    """A file or folder could not be written or read while working (full disk, quota, a read-only filesystem,
    no permission, a file where a folder should be): exit 74. Files are written atomically, so what was
    written before (records, artifacts, checkpoints) is intact; see :func:`storage_error`."""

    exit_code = 74


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a scheduler such as Slurm sends before it kills a job), raised in the main thread by the
    CLI's handler and handled like Ctrl-C: finished stages and checkpoints are kept (exit 143)."""


#: what to do about an OSError, by errno: (what happened, what to do)
_OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free space there or point --out/--cache-dir elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free space there or point --out/--cache-dir elsewhere"),
    errno.EROFS: ("the filesystem is read-only", "choose a writable folder"),
    errno.EACCES: ("permission denied", "fix the permissions or choose another folder"),
    errno.EPERM: ("operation not permitted", "fix the permissions or choose another folder"),
    errno.ENOTDIR: ("a file is where a folder should be", "remove or rename that file, or choose another folder"),
    errno.EEXIST: ("a file is where a folder should be", "remove or rename that file, or choose another folder"),
    errno.EISDIR: ("a folder is where a file should be", "remove or rename that folder"),
    errno.ELOOP: ("too many levels of symbolic links (a symlink loop)", "fix or remove the link"),
}


def storage_error(exc: OSError, path: Path | str, doing: str = "write") -> StorageError:
    """One line for an OSError met while ``doing`` (write, read, create) ``path``: what happened, by its errno
    name, and what to do; finished work is kept (atomic writes), which the line says."""
    code = exc.errno or 0
    what, todo = _OS_FAULTS.get(code, (exc.strerror or type(exc).__name__, "check the path and the disk"))
    name = errno.errorcode.get(code, type(exc).__name__)
    return StorageError(
        f"cannot {doing} '{path}': {what} ({name}); {todo}, then run again (records, finished "
        f"stages and checkpoints written so far are intact; --resume continues a stage)"
    )


def warn(message: str) -> None:
    """One ``bench: warning: ...`` line on stderr: bench goes on, but the user should know."""
    print(f"bench: warning: {message}", file=sys.stderr)


def one_line(exc: BaseException, limit: int | None = 200) -> str:
    """``Type: first line of the message`` (at most ``limit`` characters of it): what a one-line error quotes
    of an exception it reports."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit] if text else ''}".rstrip(": ")


class TrainingDiverged(BenchError):
    """A training stage met a non-finite loss: the run failed (exit 1), the message says where and what to try.

    ``batch`` 0 means the loss was met when the stage was evaluated after ``epoch`` (see :meth:`in_evaluation`).
    ``lr_option`` is what sets the stage's learning rate (``--lr``, or a method's option for a stage with its own).
    """

    def __init__(
        self,
        label: str,
        epoch: int,
        batch: int,
        batches: int,
        loss: str,
        value: float,
        lr: float,
        lr_option: str = "--lr",
    ) -> None:
        self.label, self.epoch, self.batch, self.loss, self.value = label, epoch, batch, loss, value
        where = f"at epoch {epoch}, batch {batch}/{batches}" if batch else f"in the evaluation after epoch {epoch}"
        super().__init__(
            f"{label}: loss '{loss}' is {value} {where}; the run diverged: "
            f"lower {lr_option} (now {format_number(lr)}) or check the method's loss"
        )

    @classmethod
    def in_evaluation(
        cls, label: str, epoch: int, loss: str, value: float, lr: float, lr_option: str = "--lr"
    ) -> "TrainingDiverged":
        return cls(label, epoch, 0, 0, loss, value, lr, lr_option)


def format_number(value: float) -> str:
    """A float as a user would type it on the command line: 0.05, 1e9, 2.5e-05 -> 2.5e-5."""
    text = f"{value:.6g}"
    mantissa, sep, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if sep else text


def unknown_name(kind: str, name: str, available: Iterable[str]) -> UsageError:
    """An error for an unknown name that suggests the closest match and lists what exists."""
    names = sorted(available)
    close = closest(name, names)
    hint = f" Did you mean '{close}'?" if close else ""
    return UsageError(f"unknown {kind} '{name}'.{hint} Available: {', '.join(names)}")


def closest(name: str, names: Iterable[str]) -> str | None:
    """The one of ``names`` closest to a mistyped ``name``, None when none is close (what "did you mean" offers)."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.5)
    return close[0] if close else None


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``" did you mean 'temperature'?"`` for a mistyped ``name``, or ``""``."""
    close = closest(name, names)
    return f" did you mean '{close}'?" if close else ""
