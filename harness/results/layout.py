"""Fitting a terminal table into the console's width without losing a cell: the method column, which names
each row, is in every part with a width of its own, and the other columns are packed into as few parts as
fit beside it (a second table under the first, and so on), each at the width of its widest cell."""

from __future__ import annotations

from collections.abc import Sequence

#: what a column of a rich box table takes beside its text: one space of padding each side and one rule
COLUMN_FRAME = 3


#: the narrowest the method column gets when every column fits in one table (a longer name folds onto more
#: lines, never loses a character)
MIN_KEY = 8


def fit(natural_key: int, widths: Sequence[int], total: int) -> tuple[int, list[list[int]]]:
    """(the method column's least width, the other columns' parts): one table when every column fits beside a
    method column of :data:`MIN_KEY` characters (or its widest cell, when narrower); else parts beside a
    method column of a quarter of the width (at least 12), so that the names stay readable in each."""
    narrow = min(natural_key, MIN_KEY)
    parts = column_parts(narrow, widths, total)
    if len(parts) == 1:
        return narrow, parts
    kept = min(natural_key, max(12, total // 4))
    return kept, column_parts(kept, widths, total)


def column_parts(key: int, widths: Sequence[int], total: int) -> list[list[int]]:
    """Indices of the other columns (of ``widths``), in order, grouped into parts that each fit ``total``
    characters beside a key column of width ``key``; a column too wide even alone gets a part of its own."""
    start = 1 + key + COLUMN_FRAME  # the left rule, the key column
    parts: list[list[int]] = [[]]
    used = start
    for index, width in enumerate(widths):
        if parts[-1] and used + width + COLUMN_FRAME > total:
            parts.append([])
            used = start
        parts[-1].append(index)
        used += width + COLUMN_FRAME
    return parts
