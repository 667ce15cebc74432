"""``bench list KIND [NAME ...]``: what can be run: methods, archs, datasets, recipes, executors, loggers.

Without names it lists every registered name with its plugin and description, importing no plugin code (the
built-in plugins are declared by reference). With names it shows those entries in full: a method's options
(``--opt METHOD.NAME=VALUE``), an architecture's default teacher and where the pair comes from, the extra a
logger needs and whether it is installed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from harness.core.recipes import Recipe
    from harness.plugins.registry import Entry

KINDS = ("methods", "archs", "datasets", "recipes", "executors", "loggers")  # harness.plugins.manager.KINDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    lst = sub.add_parser("list", help="list methods, archs, datasets, recipes, executors or loggers (NAME...: in full)")
    lst.add_argument("kind", choices=KINDS, help="what to list")
    lst.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="show these entries in full (a method's options, an architecture's default teacher)",
    )


def _recipe_text(r: Recipe) -> str:
    sched = f"{r.schedule}" + (f" x{r.gamma} at {list(r.milestones)}" if r.schedule == "multistep" else "")
    return f"{r.epochs} ep, batch {r.batch_size}, lr {r.lr}, wd {r.weight_decay}, {sched}" + (
        f" — {r.notes}" if r.notes else ""
    )


def _details(kind: str, entry: "Entry") -> list[tuple[str, str]]:
    """(field, text) rows of one entry in full."""
    rows = [
        ("name", entry.name + ("<name>" if entry.prefix else "")),
        ("plugin", entry.plugin),
        ("description", entry.description or "-"),
    ]
    if kind == "methods":
        options = entry.obj.options
        rows += [
            (
                f"--opt {entry.name}.{k}",
                f"{o.default!r}: {o.help}"
                + (f" (one of {', '.join(map(str, o.choices))})" if o.choices else "")
                + (f" ({o.constraint.short()})" if o.constraint else ""),
            )
            for k, o in options.items()
        ] or [("options", "none")]
        rows.append(("uses a teacher", "yes" if entry.obj.uses_teacher else "no"))
        parts = getattr(entry.obj, "parts", ())
        role = getattr(entry.obj, "role", None)
        rows.append(
            (
                "role",
                ", ".join(f"{name}: {cls.role}" for name, cls in parts)
                if parts
                else f"{role} (composes with '+')"
                if role
                else "none: a pipeline of its own (composes with nothing)",
            )
        )
    if kind == "archs" and entry.meta.get("default_teacher"):
        rows.append(("default teacher", f"{entry.meta['default_teacher']} ({entry.meta.get('teacher_source')})"))
    if kind == "recipes":
        rows.append(("recipe", _recipe_text(entry.obj)))
    if kind == "loggers" and entry.obj.requires:
        import importlib.util

        module, extra = entry.obj.requires
        state = (
            "installed"
            if importlib.util.find_spec(module)
            else f'not installed: pip install "encodenet-bench[{extra}]"'
        )
        rows.append(("needs", f"{module} ({state})"))
    return rows


def main(args: argparse.Namespace, console: "Console") -> int:

    from rich.table import Table

    from harness.plugins.manager import get_plugins

    registry = get_plugins().registry(args.kind)
    if args.names:
        for name in args.names:
            entry = registry.resolve(name).entry
            table = Table(title=f"{registry.kind} {entry.name}", show_header=False, title_justify="left")
            table.add_column("field", style="bold")
            table.add_column("value")
            for row in _details(args.kind, entry):
                table.add_row(*row)
            console.print(table)
        return 0
    table = Table(title=f"{args.kind}" + (" (bench list methods NAME: its options)" if args.kind == "methods" else ""))
    table.add_column("name")
    table.add_column("plugin")
    table.add_column("description")
    if args.kind == "archs":
        table.add_column("default teacher")
    conflicts = registry.conflicts()
    for entry in registry.entries():
        owner = f"{', '.join(conflicts[entry.name])} (conflict)" if entry.name in conflicts else entry.plugin
        cells = [entry.name + ("<name>" if entry.prefix else ""), owner, entry.description]
        if args.kind == "archs":
            cells.append(str(entry.meta.get("default_teacher") or "-"))
        if args.kind == "recipes":
            cells[2] = _recipe_text(entry.obj)
        table.add_row(*cells)
    console.print(table)
    return 0
