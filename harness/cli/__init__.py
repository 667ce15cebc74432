"""The ``bench`` command line. Exit codes: 0 success, 1 a run failed, 2 bad usage or input, 130 interrupted.

Building the parser imports no torch and no plugin: each command's module (:mod:`harness.cli.commands`)
imports what it needs when it runs, so ``bench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.cli.args import Parser, VersionAction, default_cache
from harness.cli.commands import COMMANDS
from harness.core.errors import BenchError


def command_module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"harness.cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench", description="Train and compare accuracy-boosting methods for image classifiers.",
        epilog="Run 'bench list methods' to see what can be compared, 'bench <command> -h' for a command's options.",
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command_module(name).add_parser(sub)
    return parser


def given_options(argv: list[str] | None) -> frozenset[str]:
    """The options the command line set itself, by destination (``epochs``, ``seeds``), not argparse's defaults:
    ``argv`` parsed again with every default suppressed. A study file's values give way to these only."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            else:
                action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv))) - {"command"}


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from harness.core.progress import set_quiet

    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "cache_dir", False) is None:
            args.cache_dir = default_cache()
        args.given = given_options(argv)
        set_quiet(getattr(args, "quiet", False))  # --quiet also silences dataset decoding and file loading
        return int(command_module(args.command).main(args, console))
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished stages are kept, rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
