"""Statistics over seeds: mean, std, 95% confidence interval, and Welch's t-test against the baseline."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from types import ModuleType

ALPHA = 0.05


def _scipy_stats() -> ModuleType:
    """``scipy.stats``, imported when a statistic is first computed: a command that computes none (a dry run)
    does not pay for importing it."""
    from scipy import stats

    return stats


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
    return Summary(n, mean, std, float(_scipy_stats().t.ppf(0.975, n - 1)) * std / math.sqrt(n))


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances); None when either side has one value or both
    are constant (no spread to test against)."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return None
    return float(_scipy_stats().ttest_ind(a, b, equal_var=False).pvalue)


def significant(p: float | None) -> bool:
    return p is not None and p < ALPHA


# ---- a shift of the mean, and the smallest shift a check detects ----------------------------------------

DIRECTIONS = ("both", "down")
POWER = 0.80


@dataclass(frozen=True)
class ShiftTest:
    """Has the mean moved from the reference's? Student's t-test with the pooled seed spread (the null
    hypothesis is that both are draws of one distribution, so one variance, estimated from every side that
    has 2+ values), or, given ``tolerance``, a fixed band around the reference mean.

    ``scale`` is the standard error of ``delta`` (spread * sqrt(1/n_now + 1/n_ref)), None when no spread is
    known (one value on each side, or all equal). ``direction``: ``both`` fails on any significant shift,
    ``down`` only on a significant drop."""

    delta: float
    scale: float | None
    df: int
    alpha: float
    direction: str = "both"
    tolerance: float | None = None

    @property
    def tested(self) -> bool:
        """Whether this check can decide: a tolerance, or a known spread."""
        return self.tolerance is not None or self.scale is not None

    @property
    def critical(self) -> float:
        """The largest |t| (or drop, for ``down``) that passes."""
        tail = self.alpha / 2 if self.direction == "both" else self.alpha
        return float(_scipy_stats().t.ppf(1 - tail, self.df))

    @property
    def p(self) -> float | None:
        if self.scale is None:
            return None
        t = self.delta / self.scale
        if self.direction == "both":
            return float(2 * _scipy_stats().t.sf(abs(t), self.df))
        return float(_scipy_stats().t.cdf(t, self.df))

    @property
    def failed(self) -> bool:
        if self.tolerance is not None:
            return self.delta < -self.tolerance or (self.direction == "both" and self.delta > self.tolerance)
        p = self.p
        return p is not None and p < self.alpha

    def detectable(self, power: float = POWER) -> float | None:
        """The smallest true shift of the mean this check fails on with probability ``power``, in the
        number's units; None when no spread is known. For the t-test it is exact under normality (the
        statistic is then noncentral-t distributed); for a tolerance it is tolerance + the ``power``
        quantile of t times the standard error (the far tail neglected)."""
        if self.scale is None:
            return None
        if self.tolerance is not None:
            return self.tolerance + float(_scipy_stats().t.ppf(power, self.df)) * self.scale
        return noncentrality(power, self.df, self.critical, two_sided=self.direction == "both") * self.scale


def noncentrality(power: float, df: int, critical: float, *, two_sided: bool) -> float:
    """The noncentrality at which a t-test with this ``critical`` value rejects with probability ``power``."""
    from scipy.optimize import brentq

    stats = _scipy_stats()

    def rejects(nc: float) -> float:
        far = float(stats.nct.cdf(-critical, df, nc)) if two_sided else 0.0
        # scipy's noncentral-t cdf returns NaN far in the tail, where the probability is ~0
        return float(stats.nct.sf(critical, df, nc)) + (0.0 if math.isnan(far) else far) - power

    high = critical + 10.0
    while rejects(high) < 0:
        high *= 2
    return float(brentq(rejects, 0.0, high, xtol=1e-10))


def shift_test(
    reference: list[float],
    now: list[float],
    *,
    reference_n: int | None = None,
    alpha: float = ALPHA,
    direction: str = "both",
    tolerance: float | None = None,
) -> ShiftTest:
    """The shift of mean(``now``) from mean(``reference``). ``reference_n``: how many runs the reference mean
    is over when only the mean is known (``reference`` then holds one value; None: the mean is taken as
    exact). The spread is pooled from each side with 2+ values."""
    n_ref = len(reference) if len(reference) > 1 else (reference_n or 0)
    delta = statistics.fmean(now) - statistics.fmean(reference)
    sides = [side for side in (reference, now) if len(side) > 1]
    df = sum(len(side) - 1 for side in sides)
    squares = sum(sum((x - statistics.fmean(side)) ** 2 for x in side) for side in sides)
    scale = None
    if df > 0 and squares > 0:
        scale = math.sqrt(squares / df) * math.sqrt(1 / len(now) + (1 / n_ref if n_ref else 0.0))
    return ShiftTest(delta, scale, df, alpha, direction, tolerance)
