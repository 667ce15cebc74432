"""``bench study``: what a study file will run (``show``), the bundled studies (``list``, ``copy``), and the
keys a study file may hold (``keys``). The format: docs/studies.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import add_run_arguments, add_target_arguments
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    study = sub.add_parser("study", help="show what a study file runs; list, copy the bundled studies")
    actions = study.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="a study's runs resolved (its resolved copy), jobs and image-epochs, "
        "as --dry-run prints them; bench run's options override the file's",
    )
    show.add_argument("study", help="a study file, or a bundled study's name (bench study list)")
    add_target_arguments(show)
    add_run_arguments(show, recipe_default="crd", dataset_default="cifar10")
    actions.add_parser("list", help="the bundled studies (bench reproduce's tables)")
    copy = actions.add_parser("copy", help="copy a bundled study to a file, to edit and run it")
    copy.add_argument("name", help="a bundled study (bench study list)")
    copy.add_argument("dest", type=Path, help="the new study file (never overwritten)")
    actions.add_parser("keys", help="every key a study file may hold: type, default, option (markdown)")


def main(args: argparse.Namespace, console: "Console") -> int:
    return {"show": show, "list": listing, "copy": copy, "keys": keys}[args.action](args, console)


def show(args: argparse.Namespace, console: "Console") -> int:
    from harness.cli.args import reporter_for
    from harness.cli.study.session import open_study, preview
    from harness.plugins.manager import get_plugins
    from harness.run.launch import prepare_all

    study = open_study(args.study, args)
    run_args = study.namespace(cli=args)
    prepared = prepare_all(
        study.requests(), get_plugins(), reporter_for(run_args, console), need_data=False, label=study.label
    )
    preview(study, prepared, run_args, console, resolved_copy=True)
    return 0


def listing(args: argparse.Namespace, console: "Console") -> int:
    from rich.table import Table

    from harness import studies
    from harness.cli.study.session import find

    table = Table(title="bundled studies (bench reproduce NAME; bench study copy NAME FILE to edit one)")
    for column in ("name", "title", "runs", "reference"):
        table.add_column(column)
    for name in studies.names():
        study = find(name)
        table.add_row(name, study.meta["title"], str(len(study.runs)), study.meta["reference"] or "-")
    console.print(table)
    return 0


def copy(args: argparse.Namespace, console: "Console") -> int:
    from harness import studies
    from harness.core.errors import unknown_name

    found = studies.find(args.name)
    if found is None:
        raise unknown_name("bundled study", args.name, studies.names())
    if args.dest.exists():
        raise UsageError(f"{args.dest} exists: give a new file name (bench study copy never overwrites)")
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(found.read_text(encoding="utf-8"), encoding="utf-8")
    console.print(
        f"{args.dest}: a copy of the bundled study '{args.name}'; edit it, then: bench study show "
        f"{args.dest}; bench run {args.dest} (or bench reproduce {args.dest})"
    )
    return 0


def keys(args: argparse.Namespace, console: "Console") -> int:
    from harness.cli.study.load import defaults
    from harness.cli.study.schema import markdown

    print(markdown(defaults()), end="")
    return 0
