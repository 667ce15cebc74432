"""``bench plugins``: every plugin, where it comes from and what it registered."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("plugins", help="list plugins and what each registered")


def main(args: argparse.Namespace, console: "Console") -> int:
    from rich.table import Table

    from harness.plugins.manager import get_plugins

    table = Table(title="bench plugins")
    for col in ("plugin", "from", "module", "registered", "status"):
        table.add_column(col)
    for info in get_plugins().plugins:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items() if names)
        table.add_row(info.name, info.source, info.module, registered or "-", info.status)
    console.print(table)
    return 0
