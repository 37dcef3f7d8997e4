"""The quantization grid: which subdivision of the beat (sixteenths, triplets, 32nds) fits a
piece's notes, and snapping onsets to it.

Tokens are already on a beat grid, so this mostly recovers the grid they came from; for
someone else's MIDI it picks, bar by bar and beat by beat, the coarsest grid that moves
the notes least.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from composer.score.meter import Bar, Q, is_compound

PLAYED_PENALTY_FACTOR = 5  # finer grids cost this much more when the notes fit no grid exactly


@dataclass(frozen=True)
class Cell:
    """A stretch of a bar within which the grid is either binary or triplet."""

    start: Q  # offset from the beginning of the piece
    size: Q  # a quarter note in x/4 and x/2 meters, an eighth in x/8, …
    triplets_allowed: bool  # only quarter-note cells of simple meters hold tuplets


@dataclass
class Grid:
    """The quantization grid of one part: a subdivision chosen per cell."""

    cells: list[Cell]
    starts: list[Q]  # cell starts, for bisection
    division: dict[int, int] = field(default_factory=dict)  # cell index → steps per quarter note
    exact_cells: int = 0  # cells whose note starts and ends lie exactly on a grid
    played: bool = False  # most cells fit no grid exactly: a live performance, not notation
    _floats: list[float] = field(default_factory=list, repr=False)  # starts as floats: fast search

    def index(self, offset: Q) -> int:
        """The cell holding ``offset`` (bisection on floats, then an exact correction)."""
        if len(self._floats) != len(self.starts):
            self._floats = [float(s) for s in self.starts]
        i = max(0, bisect_right(self._floats, float(offset)) - 1)
        while i > 0 and self.starts[i] > offset:
            i -= 1
        while i + 1 < len(self.starts) and self.starts[i + 1] <= offset:
            i += 1
        return i

    def is_triplet(self, index: int) -> bool:
        division = self.division.get(index)
        return division is not None and division % 3 == 0


def bar_cells(bar: Bar) -> list[Cell]:
    size = min(Fraction(1), Fraction(4, bar.denominator))
    triplets = size == 1 and not is_compound(*bar.meter)
    cells = []
    at = Fraction(0)
    while at < bar.full_length:
        if bar.origin + at + size > bar.start:  # a pickup bar skips the cells before it
            cells.append(Cell(bar.origin + at, min(size, bar.full_length - at), triplets))
        at += size
    return cells


def _snap(value: Q, origin: Q, step: Q) -> Q:
    return origin + math.floor((value - origin) / step + Fraction(1, 2)) * step


def choose_grid(bars: Sequence[Bar], notes: Iterable[tuple[Q, Q]], divisions: Sequence[int],
                finer_penalty: float) -> Grid:
    """Per cell, the coarsest subdivision that fits the note starts and ends falling in it.

    ``divisions`` are steps per quarter note, coarse first, e.g. (4, 3, 8, 6): sixteenths,
    eighth triplets, 32nds, sixteenth triplets. Where the notes fit some grid exactly
    (tokens, notation) the coarsest exact grid wins. Otherwise (a performance) each step
    down the list costs ``finer_penalty × PLAYED_PENALTY_FACTOR`` quarter notes of mean
    snapping error, and a grid on which a short note would shrink to nothing costs a whole
    quarter note. Triplet divisions are tried only in quarter-note cells of simple meters.
    """
    cells = [cell for bar in bars for cell in bar_cells(bar)]
    grid = Grid(cells, [c.start for c in cells])
    by_cell: dict[int, list[Q]] = {}
    short: dict[int, list[tuple[Q, Q]]] = {}  # notes starting and ending within one cell
    for start, end in notes:
        i = grid.index(start)
        for pos in (start, end):
            j = grid.index(pos)
            if pos != cells[j].start:
                by_cell.setdefault(j, []).append(pos)
        if end <= cells[i].start + cells[i].size:
            short.setdefault(i, []).append((start, end))
    for i, found in by_cell.items():
        cell = cells[i]
        options: list[tuple[int, int, float, bool]] = []  # (rank, division, error, collapses)
        for rank, div in enumerate(divisions):
            step = Fraction(1, div)
            if (cell.size / step).denominator != 1 or (div % 3 == 0 and not cell.triplets_allowed):
                continue
            error = float(sum(abs(p - _snap(p, cell.start, step)) for p in found)) / len(found)
            collapses = any(_snap(a, cell.start, step) == _snap(b, cell.start, step)
                            for a, b in short.get(i, ()))
            options.append((rank, div, error, collapses))
        exact = [o for o in options if o[2] == 0 and not o[3]]
        if exact:  # notes written on a grid (tokens, notation): the coarsest grid that fits
            grid.division[i] = exact[0][1]
            grid.exact_cells += 1
            continue
        # played notes: finer grids must earn their place
        penalty = finer_penalty * PLAYED_PENALTY_FACTOR
        best = min(options, key=lambda o: o[2] + penalty * o[0] + o[3], default=None)
        grid.division[i] = best[1] if best else max(1, int(1 / cell.size))
    grid.played = grid.exact_cells < 0.8 * len(by_cell)
    return grid


def snap(grid: Grid, offset: Q) -> Q:
    i = grid.index(offset)
    cell = grid.cells[i]
    div = grid.division.get(i)
    if div is None:
        return offset if offset == cell.start else _snap(offset, cell.start, cell.size)
    return _snap(offset, cell.start, Fraction(1, div))


def min_step(grid: Grid, offset: Q) -> Q:
    i = grid.index(offset)
    div = grid.division.get(i)
    return Fraction(1, div) if div else min(grid.cells[i].size, Fraction(1, 4))
