"""Do two studies rank the same methods the same way? Kendall's rank correlation between their tables.

Each side is one comparable group of records (one table of ``bench table``): its rows are matched by method
name, teacher left aside, since the question is whether a cheap regime (a small network, few epochs) orders
the methods as a better-trained one does, and the two regimes' options differ (EncodeNet's autoencoder
learning rate at the fast track, say). Where a side has several rows of one method, the row without options
is the method's (as ``bench table``'s Δ takes it), the others are left out and named; a method with several
rows and none without options is refused (``--methods`` leaves it out).

The statistic is Kendall's tau-b (ties counted as in :func:`scipy.stats.kendalltau`) over the methods both
sides have, on the row means (mean over seeds of the chosen metric), with its two-sided p-value: exact for
fewer than 50 methods without ties, else the normal approximation. With n methods the smallest exact
two-sided p is 2/n!: below 5 methods no agreement can reach p < 0.05, which the result says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.core.errors import UsageError
from harness.results.aggregation import Aggregation, Row
from harness.results.stats import ALPHA, _scipy_stats


@dataclass(frozen=True)
class Side:
    """One study's table: its title and the row chosen for each method name."""

    where: str  # the paths it was read from, as given
    title: str
    rows: dict[str, Row]
    left_out: list[str] = field(default_factory=list)  # rows of a method that has a plainer one
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # method -> its rows, none plainer than another

    def has(self, method: str) -> bool:
        return method in self.rows or method in self.ambiguous


@dataclass(frozen=True)
class Agreement:
    methods: list[str]
    a: Side
    b: Side
    tau: float
    p: float
    method: str  # how p was computed: "exact" or "asymptotic"
    smallest_p: float  # the smallest two-sided p an exact test on this many methods can give

    def ranks(self, side: Side) -> list[float]:
        return _ranks([side.rows[m].mean for m in self.methods])


def side(aggregation: Aggregation, where: str) -> Side:
    """The one group of ``aggregation`` as a :class:`Side`; a UsageError when it holds no group or several."""
    groups = {row.group.key: row.group for row in aggregation.rows}
    if len(groups) != 1:
        titles = "; ".join(sorted(g.title for g in groups.values())) or "none"
        raise UsageError(
            f"{where} holds {len(groups)} comparable groups of records ({titles}): give a folder or files of "
            f"one group (one table of `bench table`)"
        )
    by_method: dict[str, list[Row]] = {}
    for row in aggregation.rows:
        by_method.setdefault(row.method, []).append(row)
    rows: dict[str, Row] = {}
    left_out: list[str] = []
    ambiguous: dict[str, list[str]] = {}
    for method, candidates in by_method.items():
        plain = [r for r in candidates if not r.variant and not r.teacher_arch] or [
            r for r in candidates if not r.variant
        ]
        if len(candidates) == 1:
            rows[method] = candidates[0]
        elif len(plain) == 1:
            rows[method] = plain[0]
            left_out += [r.name for r in candidates if r is not plain[0]]
        else:
            ambiguous[method] = [r.name for r in candidates]
    (group,) = groups.values()
    return Side(where, group.title, rows, left_out, ambiguous)


def agreement(a: Side, b: Side, methods: Sequence[str] | None = None) -> Agreement:
    """Kendall's tau-b between ``a``'s and ``b``'s row means over ``methods`` (default: every method both have)."""
    if methods:
        missing = [f"{m} (not in {s.title})" for m in methods for s in (a, b) if not s.has(m)]
        if missing:
            raise UsageError(f"--methods: {', '.join(missing)}")
        chosen = list(methods)
    else:
        chosen = sorted(m for m in set(a.rows) | set(a.ambiguous) if b.has(m))
    for s in (a, b):
        for m in chosen:
            if m in s.ambiguous:
                raise UsageError(
                    f"{s.title}: method {m} has several rows ({', '.join(s.ambiguous[m])}) and none without "
                    f"options: leave it out with --methods, or compare its rows apart"
                )
    if len(chosen) < 3:
        raise UsageError(
            f"the two tables share {len(chosen)} method(s) ({', '.join(chosen) or 'none'}): a rank correlation "
            f"needs 3 or more"
        )
    x = [a.rows[m].mean for m in chosen]
    y = [b.rows[m].mean for m in chosen]
    tied = len(set(x)) < len(x) or len(set(y)) < len(y)
    how = "asymptotic" if tied or len(chosen) >= 50 else "exact"
    result = _scipy_stats().kendalltau(x, y, method=how)
    return Agreement(chosen, a, b, float(result.statistic), float(result.pvalue), how, 2 / math.factorial(len(chosen)))


def _ranks(values: Iterable[float]) -> list[float]:
    """Rank 1 for the highest value; tied values share their mean rank (``scipy.stats.rankdata``)."""
    return [float(r) for r in _scipy_stats().rankdata([-v for v in values], method="average")]


def render(result: Agreement, metric: str) -> str:
    """A markdown table of both sides' means and ranks, and the statistic in one line."""
    ra, rb = result.ranks(result.a), result.ranks(result.b)
    lines = [
        f"A: {result.a.where}: {result.a.title}",
        f"B: {result.b.where}: {result.b.title}",
        "",
        f"| method | A top-1 ({metric}) | A rank | B top-1 ({metric}) | B rank |",
        "|---|---|---|---|---|",
    ]
    for i, m in enumerate(result.methods):
        a, b = result.a.rows[m], result.b.rows[m]
        lines.append(
            f"| {m} | {a.mean:.2f} ({len(a.values)} seeds) | {ra[i]:g} | {b.mean:.2f} ({len(b.values)} seeds) "
            f"| {rb[i]:g} |"
        )
    verdict = (
        "the rankings agree beyond chance (p < 0.05)"
        if result.p < ALPHA
        else "no evidence beyond chance that the rankings agree (p >= 0.05)"
    )
    lines += [
        "",
        f"Kendall's tau-b = {result.tau:+.3f}, p = {result.p:.3f} (two-sided, {result.method}; "
        f"n = {len(result.methods)} methods): {verdict}.",
    ]
    if result.smallest_p >= ALPHA:
        lines.append(
            f"With {len(result.methods)} methods even identical rankings give p = {result.smallest_p:.3f}: "
            f"no p below 0.05 is possible."
        )
    for s, label in ((result.a, "A"), (result.b, "B")):
        if s.left_out:
            lines.append(f"{label}: left out (a plainer row of the method is compared): {', '.join(s.left_out)}.")
    lines.append("Ranks are of the row means over seeds; they do not carry the seeds' spread (see each table's CIs).")
    return "\n".join(lines) + "\n"
