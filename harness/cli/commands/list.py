"""``bench list KIND``: what can be run: methods (with their options), archs, datasets, recipes, executors."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

KINDS = ("methods", "archs", "datasets", "recipes", "executors")  # harness.plugins.manager.KINDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    lst = sub.add_parser("list", help="list methods, archs, datasets, recipes or executors")
    lst.add_argument("kind", choices=KINDS)


def main(args: argparse.Namespace, console: "Console") -> int:
    from rich.table import Table

    from harness.plugins.manager import get_plugins

    registry = get_plugins().registry(args.kind)
    table = Table(title=f"{args.kind}")
    table.add_column("name")
    table.add_column("plugin")
    table.add_column("description")
    if args.kind == "methods":
        table.add_column("options (--opt METHOD.NAME=VALUE)")
    if args.kind == "archs":
        table.add_column("default teacher")
    conflicts = registry.conflicts()
    for entry in registry.entries():
        owner = f"{', '.join(conflicts[entry.name])} (conflict)" if entry.name in conflicts else entry.plugin
        row = [entry.name + ("<name>" if entry.prefix else ""), owner, entry.description]
        if args.kind == "methods":
            row.append("\n".join(f"{k}={o.default!r}: {o.help}" + (f" [{o.constraint.short()}]" if o.constraint else "")
                                  for k, o in entry.obj.options.items()) or "-")
        if args.kind == "archs":
            row.append(str(entry.meta.get("default_teacher") or "-"))
        if args.kind == "recipes":
            r = entry.obj
            sched = f"{r.schedule}" + (f" x{r.gamma} at {list(r.milestones)}" if r.schedule == "multistep" else "")
            row[2] = (f"{r.epochs} ep, batch {r.batch_size}, lr {r.lr}, wd {r.weight_decay}, {sched}"
                      + (f" — {r.notes}" if r.notes else ""))
        table.add_row(*row)
    console.print(table)
    return 0
