"""`bench plot`'s point labels never overlap (issue 32: methods of close accuracy and equal size were unreadable)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from test_tables import TWELVE, record


def crowded() -> list[dict]:
    """Twelve methods of one size, four at each of three accuracies: their labels start on top of one another."""
    return [
        record(method, seed, 70.0 + 0.5 * (i % 3) + 0.01 * seed, metrics__macs=1_304_195_584)
        for i, method in enumerate(TWELVE)
        for seed in range(2)
    ]


def label_boxes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list]:
    """The display boxes of every panel's labels' text (not their leader lines) in the efficiency figures, as
    they are saved."""
    from matplotlib.text import Text

    from harness.results import plots

    boxes: list[list] = []
    save = plots._save

    def record_then_save(fig, stem):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes.extend([Text.get_window_extent(t, renderer) for t in ax.texts] for ax in fig.axes)
        return save(fig, stem)

    monkeypatch.setattr(plots, "_save", record_then_save)
    assert plots.efficiency(crowded(), tmp_path)
    return boxes


def test_efficiency_labels_never_overlap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.results.labels import overlap

    panels = label_boxes(monkeypatch, tmp_path / "plots")
    assert len(panels) == 2 and all(len(boxes) == len(TWELVE) for boxes in panels)
    for boxes in panels:
        assert not [(a, b) for a, b in combinations(boxes, 2) if overlap(a, b)]


def test_without_separation_these_labels_overlap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The case above is a real one: left where they start, its labels overlap."""
    from harness.results import plots
    from harness.results.labels import overlap

    monkeypatch.setattr(plots, "separate", lambda fig, labels: labels)
    panels = label_boxes(monkeypatch, tmp_path / "plots")
    assert any(overlap(a, b) for boxes in panels for a, b in combinations(boxes, 2))
