"""``bench rank``: Kendall's tau-b between two studies' rankings, on the published records (issue 33, item 4).
The statistic and its exact p are checked against a count of concordant pairs and an enumeration of every
ordering, computed here independently of scipy."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import UsageError
from harness.results.aggregation import collect
from harness.results.ranking import agreement, render, side
from harness.results.records import readable_records

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"
DISTILLERS = PUBLISHED / "distillers-resnet8-cifar10jpg" / "runs"  # smoke recipe, 3 epochs, 5,000 images
KD = PUBLISHED / "kd-resnet8-cifar10jpg" / "runs"  # crd recipe, 8 epochs, 4,000 images
ENCODENET = PUBLISHED / "encodenet-resnet8-cifar10jpg-full" / "runs"
STOPPED = PUBLISHED / "encodenet-resnet8-cifar10jpg-full-30ep" / "runs"  # stopped: baseline and encodenet only


def side_of(path: Path):
    return side(collect(readable_records([path])), str(path))


def tau_by_pairs(x: list[float], y: list[float]) -> float:
    """Kendall's tau (no ties): (concordant - discordant) pairs over all pairs."""
    pairs = list(itertools.combinations(range(len(x)), 2))
    return sum(math.copysign(1, (x[i] - x[j]) * (y[i] - y[j])) for i, j in pairs) / len(pairs)


def exact_p(x: list[float], y: list[float]) -> float:
    """Two-sided p: the share of all orderings of y whose |tau| reaches the observed one."""
    observed = abs(tau_by_pairs(x, y))
    taus = [abs(tau_by_pairs(x, list(p))) for p in itertools.permutations(y)]
    return sum(t >= observed - 1e-12 for t in taus) / len(taus)


def test_tau_and_its_exact_p_on_two_published_studies() -> None:
    a, b = side_of(DISTILLERS), side_of(KD)
    result = agreement(a, b)
    assert result.methods == sorted(set(a.rows) & set(b.rows)) and len(result.methods) == 5
    x = [a.rows[m].mean for m in result.methods]
    y = [b.rows[m].mean for m in result.methods]
    assert result.tau == pytest.approx(tau_by_pairs(x, y))
    assert result.method == "exact" and result.p == pytest.approx(exact_p(x, y))
    assert result.smallest_p == pytest.approx(2 / 120)
    ranks = result.ranks(a)
    assert sorted(ranks) == [1, 2, 3, 4, 5] and ranks[x.index(max(x))] == 1
    text = render(result, "last")
    assert f"tau-b = {result.tau:+.3f}" in text and "no p below 0.05 is possible" not in text
    # a chosen subset: three methods, where no p below 0.05 is possible
    three = agreement(a, b, ["baseline", "kd", "fitnet"])
    assert three.methods == ["baseline", "kd", "fitnet"] and "no p below 0.05 is possible" in render(three, "last")
    # a study against itself: identical rankings
    same = agreement(a, side_of(DISTILLERS))
    assert same.tau == pytest.approx(1.0) and same.p == pytest.approx(2 / math.factorial(len(same.methods)))


def test_a_method_with_several_rows_is_its_row_without_options() -> None:
    enc = side_of(ENCODENET)
    assert enc.rows["encodenet"].variant == "" and enc.left_out == ["encodenet [split=classifier]"]


def test_bad_input_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    several = PUBLISHED / "related-systems-cifar10jpg" / "runs"
    assert main(["rank", str(several), str(KD)]) == 2
    assert "holds 5 comparable groups" in capsys.readouterr().err
    with pytest.raises(UsageError, match=r"share 1 method\(s\) \(baseline\): a rank correlation needs 3"):
        agreement(side_of(STOPPED), side_of(KD))
    assert main(["rank", str(DISTILLERS), str(KD), "--methods", "baseline,kd,crd"]) == 2
    assert "crd (not in" in capsys.readouterr().err
    assert main(["rank", str(DISTILLERS), str(KD)]) == 0
    assert "Kendall's tau-b" in capsys.readouterr().out
