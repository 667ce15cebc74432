"""Statistics over seeds: mean, std, 95% confidence interval, and Welch's t-test against the baseline."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one value
    ci95: float | None  # half-width of the 95% t-interval; None for one value


def summarize(values: list[float]) -> Summary:
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return Summary(n, mean, 0.0, None)
    std = statistics.stdev(values)
    return Summary(n, mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n))


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances); None when either side has one value or both
    are constant (no spread to test against)."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def significant(p: float | None) -> bool:
    return p is not None and p < ALPHA
