"""The ``bench`` command line. Exit codes: 0 success, 1 a run failed, 2 bad usage or input, 74 a file could
not be written or read (full disk, permissions), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); see
docs/errors.md.

Building the parser imports no torch and no plugin: each command's module (:mod:`harness.cli.commands`)
imports what it needs when it runs, so ``bench --help`` answers at once. Every error is one line; ``--debug``
(or ``BENCH_DEBUG=1``) also prints the traceback behind it. SIGTERM (a scheduler ending a job) is handled as
Ctrl-C is: finished stages and the last epoch's checkpoint are kept, one line says how to continue.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from harness.cli.args import Parser, VersionAction, default_cache
from harness.cli.commands import COMMANDS
from harness.core import numerics
from harness.core.environ import debugging
from harness.core.errors import DEBUG_ENV, BenchError, Terminated, one_line

INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT
TERMINATED = 143  # SIGTERM: 128 + SIGTERM, what schedulers (Slurm) and shells expect


def command_module(name: str):
    return importlib.import_module(f"harness.cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench",
        description="Train and compare accuracy-boosting methods for image classifiers.",
        epilog="Run 'bench list methods' to see what can be compared, 'bench <command> -h' for a command's options.",
    )
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback behind an error line (also: environment BENCH_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command_module(name).add_parser(sub)
    add_debug_everywhere(parser)
    return parser


def add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after a command too (``bench run ... --debug``, as error lines suggest), on every subcommand;
    SUPPRESS keeps a ``bench --debug run`` from being reset by the subcommand's default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="print the traceback behind an error line (also: BENCH_DEBUG=1)",
                )
                add_debug_everywhere(child)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`~harness.core.errors.Terminated` in the main thread (as
    Ctrl-C raises KeyboardInterrupt), so the same code keeps finished work; the old handler comes back after."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (bench called from a thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from harness.core.progress import set_quiet

    console = Console() if sys.stdout.isatty() else Console(width=160)
    with sigterm_as_interrupt():
        try:
            args = build_parser().parse_args(argv)
            if getattr(args, "cache_dir", False) is None:
                args.cache_dir = default_cache()
            args.given = frozenset(getattr(args, "given", frozenset()))  # recorded by the one parse
            if args.debug:
                os.environ[DEBUG_ENV] = "1"  # also for worker processes
            if argv is None and getattr(args, "numerics", None):  # the pins before torch runs (read once)
                numerics.pin_environment(numerics.profile(args.numerics), threads=getattr(args, "threads", None))
            set_quiet(getattr(args, "quiet", False))  # --quiet also silences dataset decoding and file loading
            return int(command_module(args.command).main(args, console))
        except numerics.NotPinned as exc:  # a study file's profile, met after torch started: start again pinned
            if argv is not None or numerics.restarted():
                print(f"bench: error: {exc}", file=sys.stderr)
                return exc.exit_code
            numerics.restart_pinned(exc.profile, exc.threads, sys.argv[1:])
            return 1  # not reached
        except BenchError as exc:
            if debugging():
                traceback.print_exception(exc, file=sys.stderr)
            print(f"bench: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except Terminated:
            print(
                "bench: terminated (SIGTERM); finished stages and the last epoch's checkpoints are kept, rerun "
                "with --resume to continue",
                file=sys.stderr,
            )
            return TERMINATED
        except KeyboardInterrupt:
            print("bench: interrupted; finished stages are kept, rerun with --resume to continue", file=sys.stderr)
            return INTERRUPTED
        except Exception as exc:  # a bug (bench's, or plugin code bench did not expect to call): still one line
            if debugging():
                traceback.print_exception(exc, file=sys.stderr)
            print(
                f"bench: error: internal error: {one_line(exc)}; rerun with --debug (or BENCH_DEBUG=1) for the "
                f"traceback and report it",
                file=sys.stderr,
            )
            return 1


if __name__ == "__main__":
    sys.exit(main())
