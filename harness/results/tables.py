"""Comparison tables from records: one table per comparable group (:mod:`harness.results.grouping`), a row
per method aggregated over seeds (:mod:`harness.results.aggregation`), read as :mod:`harness.results.
formatting` says; :func:`render` lays them out as a rich or markdown table, or exports them as CSV or JSON.
"""

from __future__ import annotations

import csv
import io
import json
import statistics

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tabulate import tabulate

from harness.results.aggregation import collect
from harness.results.formatting import (
    Column,
    caption,
    compact_caption,
    duplicates_text,
    export_row,
    group_json,
    left_out_text,
    not_ok_text,
    select_columns,
    table_rows,
)
from harness.results.grouping import Group
from harness.results.layout import fit
from harness.results.records import Record
from harness.results.stats import summarize

FORMATS = ("rich", "markdown", "csv", "json")


def render(
    records: list[Record],
    fmt: str = "rich",
    metric: str = "last",
    console: Console | None = None,
    *,
    columns: list[str] | None = None,
    wide: bool = False,
    against: str | None = None,
) -> str:
    """Render records as one table per comparable group; ``rich`` prints to ``console`` and returns '', others
    return text. The rich table shows the compact column set unless ``wide`` or ``columns`` (keys of
    :func:`column_keys`) say otherwise; markdown shows every column (or ``columns``); CSV and JSON export
    every number, one column each. Δ and p compare each row with the baseline of its table, or with the row
    of method ``against`` (:func:`~harness.results.aggregation.collect`; a method no table has: UsageError)."""
    agg = collect(records, metric, against)
    rows = agg.rows
    reference = against or "baseline"
    if fmt == "json":
        return json.dumps(
            [
                {
                    **export_row(r, metric, reference),
                    "setting": group_json(r.group),
                    "values": r.values,
                    "seeds": r.seeds,
                    "top1_distorted": {
                        name: {"mean": statistics.fmean(v), "std": summarize(v).std, "values": v}
                        for name, v in r.distorted.items()
                    },
                    "latency_ms_batch1_values": r.per_seed.get("latency", []),
                    "teacher": r.teacher,
                    "duplicates_ignored": [d.text() for d in r.duplicates],
                }
                for r in rows
            ],
            indent=2,
        )
    if fmt == "csv":
        exported = [export_row(r, metric, reference) for r in rows]
        header = list(dict.fromkeys(k for row in exported for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in exported)
        return buf.getvalue()
    cols = select_columns(rows, columns, compact=fmt == "rich" and not wide, against=reference)
    headers, body = table_rows(rows, cols)
    footer = [t for t in (caption(metric, reference), not_ok_text(agg.not_ok), left_out_text(agg.left_out)) if t]
    if fmt == "markdown":
        parts = []
        for g in agg.groups:
            lines = [line for r, line in zip(rows, body) if r.group is g]
            dups = duplicates_text([d for d in agg.duplicates if d.group.key == g.key])
            parts.append(
                f"### {g.title}\n\n"
                + tabulate(lines, headers, tablefmt="github")
                + f"\n\n{g.caption()}\n"
                + (f"\n{dups}\n" if dups else "")
            )
        return "\n".join(parts) + "\n" + "\n\n".join(footer) + "\n"
    console = console or Console()
    for g in agg.groups:
        lines = [line for r, line in zip(rows, body) if r.group is g]
        for table in terminal_tables(g, headers, lines, cols, console.width):
            console.print(table)
        dups = duplicates_text([d for d in agg.duplicates if d.group.key == g.key])
        if dups:
            console.print(f"[yellow]{escape(dups)}[/yellow]")
    if fmt == "rich" and not wide and not columns:
        footer[0] = compact_caption(metric, reference)
    for text in footer:
        console.print(f"[dim]{escape(text)}[/dim]", highlight=False)
    return ""


def terminal_tables(
    g: Group, headers: list[str], lines: list[list[str]], cols: list[Column], width: int
) -> list[Table]:
    """A group's rich table, as one or more tables that each fit ``width`` (:mod:`harness.results.layout`):
    the method column in each (folded, never shrunk to nothing: every row keeps its name), the other columns at
    their widest cell's width (never wrapped, never cut), as many beside it as fit."""
    key = next((i for i, c in enumerate(cols) if c.key == "method"), None)
    others = [i for i in range(len(headers)) if i != key]
    widest = {i: max([len(headers[i]), *(len(line[i]) for line in lines)]) for i in range(len(headers))}
    kept, parts = fit(widest[key] if key is not None else 0, [widest[i] for i in others], width)
    tables = []
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        title = g.title if n == 0 else f"{g.title} (continued: part {n + 1} of {len(parts)})"
        table = Table(
            title=escape(title),
            caption=escape(g.caption()) if last else None,
            title_justify="left",
            caption_justify="left",
        )
        shown = ([key] if key is not None else []) + [others[j] for j in part]
        for i in shown:
            if i == key:
                table.add_column(headers[i], justify="left", overflow="fold", min_width=kept)
            elif cols[i].key == "teacher":  # may wrap, never loses a character
                table.add_column(headers[i], justify="left", overflow="fold")
            else:  # numbers keep their width: never wrapped, never cut
                table.add_column(headers[i], justify="right", no_wrap=True, min_width=widest[i])
        for line in lines:
            table.add_row(*(escape(line[i]) for i in shown))
        tables.append(table)
    return tables
