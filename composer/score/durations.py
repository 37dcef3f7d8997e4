"""Notatable durations: which lengths exist, where a note is split and tied, and the
``Piece``s (notes and rests with a written length) that come out.

A note that crosses the middle of a 4/4 bar, or a beat it does not start on, is split
at the metric levels of its bar; within a beat that the grid fills with triplets every
piece is a 3:2 tuplet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from composer.score.grid import Grid
from composer.score.meter import Bar, Q, metric_levels

PLAIN_VALUES = tuple(Fraction(8, 2**k) for k in range(8))  # breve, whole … 64th


DOTTED_VALUES = tuple(v * Fraction(3, 2) for v in PLAIN_VALUES[1:-1])  # dotted whole … dotted 32nd


NOTATABLE = frozenset(PLAIN_VALUES + DOTTED_VALUES)


TRIPLET_PIECES = (Fraction(2, 3), Fraction(1, 3), Fraction(1, 6))  # within a quarter-note beat


TYPE_NAMES = {
    Fraction(8): "breve", Fraction(4): "whole", Fraction(2): "half", Fraction(1): "quarter",
    Fraction(1, 2): "eighth", Fraction(1, 4): "16th", Fraction(1, 8): "32nd", Fraction(1, 16): "64th",
}


@dataclass(frozen=True)
class Event:
    """A chord (one pitch or several) or, with no pitches, a rest."""

    start: Q  # offset from the beginning of the piece
    end: Q
    pitches: tuple[int, ...]  # MIDI numbers, low to high; empty for a rest


@dataclass(frozen=True)
class Piece:
    """One written symbol: a note, chord or rest with a single notatable duration."""

    offset: Q  # from the start of its bar
    length: Q  # sounding length in quarter notes
    pitches: tuple[int, ...]  # empty for a rest
    tie: str | None = None  # "start", "continue", "stop" or None
    tuplet: str | None = None  # None, or "start"/"continue"/"stop" within a triplet beat
    full_bar: bool = False  # a rest filling its whole bar (drawn as a centred whole rest)
    beams: tuple[str, ...] = ()  # per beam level: "start", "continue", "stop",
    #   "partial-left" or "partial-right"; empty when the note has a flag or no beam

    @property
    def written(self) -> Q:
        """The length of the written symbol, before any 3:2 tuplet ratio."""
        return self.length * Fraction(3, 2) if self.tuplet else self.length


def notatable(length: Q) -> bool:
    return length in NOTATABLE


def type_and_dots(length: Q) -> tuple[str, int]:
    """("quarter", 1) for 1.5; raises ValueError for a length no single symbol has."""
    if length in TYPE_NAMES:
        return TYPE_NAMES[length], 0
    plain = length * Fraction(2, 3)
    if length in NOTATABLE and plain in TYPE_NAMES:
        return TYPE_NAMES[plain], 1
    raise ValueError(f"{length} quarter notes is not one notatable duration")


def metric_split(start: Q, end: Q, levels: Sequence[Q]) -> list[tuple[Q, Q]]:
    """Split ``[start, end)`` (offsets within a bar) into notatable, metrically clear spans.

    A span stays whole if its length is notatable and it starts on a boundary of the
    coarsest level it crosses (a half note on beat 2 of 4/4 crosses the middle of
    the bar, so it becomes two tied quarters); otherwise it is cut at that boundary.
    """
    length = end - start
    for level in levels:
        first = (math.floor(start / level) + 1) * level
        if first < end:
            if length in NOTATABLE and start % level == 0:
                return [(start, end)]
            return metric_split(start, first, levels) + metric_split(first, end, levels)
    if length in NOTATABLE:
        return [(start, end)]
    return _greedy_split(start, end)


def _greedy_split(start: Q, end: Q) -> list[tuple[Q, Q]]:
    spans = []
    while start < end:
        value = next((v for v in sorted(NOTATABLE, reverse=True) if v <= end - start), None)
        if value is None:  # below a 64th: cannot be written; absorbed by the caller's grid
            spans.append((start, end))
            break
        spans.append((start, start + value))
        start += value
    return spans


def triplet_split(start: Q, end: Q, cell_start: Q) -> list[tuple[Q, Q]]:
    """Split a span inside a triplet beat into triplet quarters, eighths and sixteenths."""
    spans = []
    while start < end:
        rel = start - cell_start
        for piece in TRIPLET_PIECES:
            aligned = rel % (Fraction(1, 3) if piece > Fraction(1, 6) else Fraction(1, 6)) == 0
            if piece <= end - start and aligned:
                break
        else:
            piece = end - start  # off the triplet grid: cannot happen after quantization
        spans.append((start, start + piece))
        start += piece
    return spans


def split_in_bar(start: Q, end: Q, bar: Bar, grid: Grid) -> list[tuple[Q, Q, bool]]:
    """``(start, end, in_tuplet)`` pieces of a span within one bar (absolute offsets)."""
    out: list[tuple[Q, Q, bool]] = []
    levels = metric_levels(bar)
    i = grid.index(start)
    cell = grid.cells[i]
    if grid.is_triplet(i) and start != cell.start:  # begins inside a triplet beat
        stop = min(end, cell.start + cell.size)
        out += [(a, b, True) for a, b in triplet_split(start, stop, cell.start)]
        start = stop
        if start >= end:
            return out
    j = grid.index(end)
    tail: list[tuple[Q, Q, bool]] = []
    last = grid.cells[j]
    if end != last.start and grid.is_triplet(j) and end < last.start + last.size and start < last.start:
        tail = [(a, b, True) for a, b in triplet_split(last.start, end, last.start)]
        end = last.start
    elif end != last.start and grid.is_triplet(j) and start >= last.start:
        return out + [(a, b, True) for a, b in triplet_split(start, end, last.start)]
    for a, b in metric_split(start - bar.origin, end - bar.origin, levels):
        out.append((a + bar.origin, b + bar.origin, False))
    return out + tail


def tie_flags(count: int) -> list[str | None]:
    if count == 1:
        return [None]
    return ["start"] + ["continue"] * (count - 2) + ["stop"]
