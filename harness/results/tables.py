"""Comparison tables from records: mean ± std over seeds, Δ vs the baseline, parameters, FLOPs, latency."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tabulate import tabulate

from harness.results.stats import ALPHA, summarize, welch_p

FORMATS = ("rich", "markdown", "csv", "json")
METRICS = {"last": "top1_last", "best": "top1_best", "selected": "top1_selected"}


@dataclass
class Row:
    """One method in one setting (dataset, arch, recipe budget), aggregated over seeds."""

    setting: tuple[str, str, str, str]  # dataset, source, arch, budget
    method: str
    variant: str
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    params: int | None = None
    extra_params: int | None = None
    flops: int | None = None
    latency: float | None = None
    teacher: str | None = None
    teacher_arch: str | None = None
    delta: float | None = None
    p_value: float | None = None  # Welch's t-test against the baseline of the same setting

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return summarize(self.values).std

    @property
    def ci95(self) -> float | None:
        return summarize(self.values).ci95

    def delta_text(self) -> str:
        if self.delta is None:
            return ""
        if self.p_value is None:
            return f"{self.delta:+.2f}"
        return f"{self.delta:+.2f}" + ("*" if self.p_value < ALPHA else " (n.s.)")


def budget(record: dict) -> str:
    r = record["recipe"]
    return f"{r['name']} {r['epochs']}ep bs{r['batch_size']}"


def variant(record: dict) -> str:
    opts = record["method"].get("options") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if v != record["method"].get("defaults", {}).get(k))


def aggregate(records: Iterable[dict], metric: str = "last") -> list[Row]:
    key_name = METRICS[metric]
    rows: dict[tuple, Row] = {}
    for rec in records:
        setting = (rec["dataset"]["name"], rec["dataset"].get("source", ""), rec["arch"], budget(rec))
        key = (setting, rec["method"]["name"], variant(rec))
        row = rows.setdefault(key, Row(setting=setting, method=key[1], variant=key[2]))
        value = rec["metrics"].get(key_name)
        if value is None:
            continue
        row.values.append(value)
        row.seeds.append(rec["seed"])
        m = rec["metrics"]
        row.params, row.extra_params, row.flops = m.get("params_deployed"), m.get("params_extra"), m.get("flops")
        row.latency = (m.get("latency_ms") or {}).get("batch1")
        if rec.get("teacher"):
            t = rec["teacher"]
            acc = t.get("test_acc")
            row.teacher = f"{t['arch']} ({acc:.2f})" if acc is not None else t["arch"]
            row.teacher_arch = t["arch"]
    out = [r for r in rows.values() if r.values]
    base = {r.setting: r for r in out if r.method == "baseline" and not r.variant}
    for r in out:
        if r.setting in base and r is not base[r.setting]:
            r.delta = r.mean - base[r.setting].mean
            r.p_value = welch_p(r.values, base[r.setting].values)
    order = {"baseline": 0}
    out.sort(key=lambda r: (r.setting, order.get(r.method, 1), r.method, r.variant))
    return out


def _fmt_int(n: int | None) -> str:
    return f"{n:,}" if n is not None else "-"


def _fmt_flops(n: int | None) -> str:
    return f"{n / 1e6:,.1f}M" if n is not None else "-"


def table_rows(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    headers = ["dataset", "arch", "budget", "method", "top-1 (%)", "95% CI", "Δ vs baseline", "p (Welch)", "seeds",
               "params", "extra params", "FLOPs", "latency b1 (ms)", "teacher"]
    body = []
    for r in rows:
        name = r.method + (f" [{r.variant}]" if r.variant else "")
        body.append([
            r.setting[0], r.setting[2], r.setting[3], name, f"{r.mean:.2f} ± {r.std:.2f}",
            f"±{r.ci95:.2f}" if r.ci95 is not None else "-", r.delta_text(),
            f"{r.p_value:.3f}" if r.p_value is not None else "-", str(len(r.values)), _fmt_int(r.params),
            _fmt_int(r.extra_params), _fmt_flops(r.flops), f"{r.latency:.2f}" if r.latency else "-", r.teacher or "",
        ])
    return headers, body


def caption(rows: list[Row], metric: str) -> str:
    sources = sorted({r.setting[1] for r in rows if r.setting[1]})
    protocol = {"last": "last epoch", "best": "best epoch (max test accuracy over epochs)",
                "selected": "epoch chosen by --select"}[metric]
    return (f"top-1 = {protocol}, mean ± std over seeds; 95% CI = t-interval half-width; Δ marked * when "
            f"Welch's t-test against the baseline gives p < {ALPHA}, (n.s.) when not (needs 2+ seeds each). "
            f"Data: {'; '.join(sources) or 'unknown'}")


def render(records: list[dict], fmt: str = "rich", metric: str = "last", console: Console | None = None) -> str:
    """Render records as a table; ``rich`` prints to ``console`` and returns '', others return text."""
    rows = aggregate(records, metric)
    if fmt == "json":
        return json.dumps([{
            "dataset": r.setting[0], "source": r.setting[1], "arch": r.setting[2], "budget": r.setting[3],
            "method": r.method, "variant": r.variant, "mean": r.mean, "std": r.std, "ci95": r.ci95,
            "n": len(r.values), "values": r.values, "seeds": r.seeds, "delta_vs_baseline": r.delta,
            "p_welch": r.p_value, "params": r.params,
            "extra_params": r.extra_params, "flops": r.flops, "latency_ms_batch1": r.latency, "teacher": r.teacher,
            "metric": METRICS[metric],
        } for r in rows], indent=2)
    headers, body = table_rows(rows)
    if fmt == "markdown":
        return tabulate(body, headers, tablefmt="github") + f"\n\n{caption(rows, metric)}\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(headers)
        writer.writerows(body)
        return buf.getvalue()
    console = console or Console()
    settings = sorted({r.setting for r in rows})
    show_teacher = any(r.teacher for r in rows)
    for setting in settings:
        dataset, _, arch, budget_text = setting
        table = Table(title=f"{arch} on {dataset} ({budget_text})", title_justify="left")
        for h in headers[3:] if show_teacher else headers[3:-1]:
            table.add_column(h, justify="left" if h in ("method", "teacher") else "right")
        for r, line in zip(rows, body):
            if r.setting == setting:
                table.add_row(*map(escape, line[3:] if show_teacher else line[3:-1]))
        console.print(table)
    console.print(f"[dim]{caption(rows, metric)}[/dim]")
    return ""
