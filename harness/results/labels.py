"""Point labels of a plot that never overlap one another.

Each label starts beside its point; then, from the lowest up, a label that overlaps one already placed is
moved up (in display space, so at the figure's final layout) until it overlaps none, and a moved label gets a
thin grey leader line to its point. Labels only ever move up and each is checked against every label placed
before it, so no two placed labels overlap.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

#: the gap left between two labels, in display pixels
GAP = 1.0
LEADER = {"arrowstyle": "-", "color": "0.55", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2, "relpos": (0, 0)}


def overlap(a: Bbox, b: Bbox) -> bool:
    """Whether two boxes share an area (touching edges do not count)."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def separate(fig: Figure, labels: list[Annotation]) -> list[Annotation]:
    """The labels after moving overlapping ones up (a moved label is a new annotation, with a leader line);
    call it once the figure's layout is final (after ``tight_layout``)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's canvas (the one plots use) has it
    boxes = {id(label): Text.get_window_extent(label, renderer) for label in labels}  # the text, not a leader
    placed: list[Bbox] = []
    out: list[Annotation] = []
    for label in sorted(labels, key=lambda a: (boxes[id(a)].y0, boxes[id(a)].x0)):
        box = boxes[id(label)]
        shift = 0.0
        while True:
            hits = [b for b in placed if overlap(b, box.translated(0, shift))]
            if not hits:
                break
            shift = max(b.y1 for b in hits) - box.y0 + GAP
        placed.append(box.translated(0, shift))
        out.append(_moved(label, shift * 72 / fig.dpi) if shift else label)
    return out


def _moved(label: Annotation, points: float) -> Annotation:
    """``label`` raised by ``points``, with a leader line to its point (the old annotation is removed)."""
    ax = label.axes
    assert isinstance(ax, Axes)
    dx, dy = label.xyann
    moved = ax.annotate(
        label.get_text(),
        label.xy,
        xytext=(dx, dy + points),
        textcoords="offset points",
        fontsize=label.get_fontsize(),
        arrowprops=LEADER,
        annotation_clip=False,
    )
    label.remove()
    return moved
