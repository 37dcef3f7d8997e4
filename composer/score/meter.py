"""Bars and meters on exact quarter-note fractions: where bars fall, how long they are, their metric levels.

A piece's time signatures become a list of ``Bar``s (a pickup or a meter change mid-bar
makes a short bar), and each bar knows the levels (half bar, beat, half beat...) that
the duration rules split notes at. No music21 here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

Q = Fraction  # durations and offsets in quarter notes


FINEST_LEVEL = Fraction(1, 16)  # metric levels go down to 64th notes


@dataclass(frozen=True)
class Bar:
    """One measure of the piece."""

    start: Q  # offset of its bar line from the beginning, in quarter notes
    length: Q  # its length in quarter notes (what its time signature says)
    numerator: int  # time signature, e.g. 6 of 6/8
    denominator: int  # … and 8 of 6/8
    shift: Q = Fraction(0)  # a pickup bar: the unwritten silent start of its full bar

    @property
    def end(self) -> Q:
        return self.start + self.length

    @property
    def origin(self) -> Q:
        """Where the bar's full metric bar would begin (before ``start`` for a pickup)."""
        return self.start - self.shift

    @property
    def full_length(self) -> Q:
        return self.length + self.shift

    @property
    def meter(self) -> tuple[int, int]:
        return self.numerator, self.denominator


def is_compound(numerator: int, denominator: int) -> bool:
    """6/8, 9/8, 12/8, 6/4 …: beats of three units."""
    return numerator % 3 == 0 and numerator > 3 and denominator >= 4


METER_GRID = Fraction(1, 16)  # quarter notes: meter changes fall on 64th notes


MAX_DENOMINATOR = 64


MAX_BEATS = 32  # time signatures of more beats are not written


MAX_BAR_QUARTERS = 32


def bar_length(numerator: int, denominator: int) -> Q:
    return Fraction(4 * numerator, denominator)


def meter_for_length(length: Q, denominator: int) -> tuple[int, int]:
    """A time signature whose bar is exactly ``length`` quarters, e.g. 5/8 for 2.5."""
    for den in sorted({denominator, 4, 8, 16, 32, 64}):
        count = length * den / 4
        if count.denominator == 1 and count >= 1:
            return int(count), den
    return max(1, round(length * 16)), 64  # not reached for lengths on a 64th grid


def make_bars(meters: Sequence[tuple[Q, int, int]], end: Q) -> list[Bar]:
    """Bars from ``(offset, numerator, denominator)`` changes, covering ``[0, end)``.

    4/4 holds until the first change. A change that falls inside a bar ends that bar
    early; the short bar gets a time signature of its own, so every bar is full. Changes
    move to the nearest 64th note (a short bar must be notatable); meters with a
    denominator above 64, more than 32 beats or bars longer than 32 quarter notes are
    ignored (music21 takes seconds to build a meter of 64 beats, minutes for 1000).
    """
    changes: dict[Q, tuple[int, int]] = {}
    for offset, num, den in sorted(meters, key=lambda m: m[0]):
        if (1 <= num <= MAX_BEATS and 1 <= den <= MAX_DENOMINATOR and den & (den - 1) == 0
                and bar_length(num, den) <= MAX_BAR_QUARTERS):
            at = Fraction(round(Fraction(offset) / METER_GRID)) * METER_GRID
            changes[max(Fraction(0), at)] = (num, den)
    points = sorted(changes)
    meter = changes.get(Fraction(0), (4, 4))
    bars: list[Bar] = []
    start = Fraction(0)
    k = 0
    while start < end or not bars:
        while k < len(points) and points[k] <= start:
            meter = changes[points[k]]
            k += 1
        length = bar_length(*meter)
        next_change = points[k] if k < len(points) else None
        if next_change is not None and next_change < start + length:
            bars += _short_bars(start, next_change - start, meter[1])
            start = next_change
            continue
        bars.append(Bar(start, length, *meter))
        start += length
    return bars


def _short_bars(start: Q, length: Q, denominator: int) -> list[Bar]:
    """A bar cut short by a meter change, with a time signature of at most 32 beats: one bar
    (5/8 for 2.5 quarters) where it can, else 4/4 bars, a k/4 bar and a bar under a beat."""
    meter = meter_for_length(length, denominator)
    if meter[0] <= MAX_BEATS:
        return [Bar(start, length, *meter)]
    pieces = [Fraction(4)] * int(length // 4)
    rest = length - sum(pieces, Fraction(0))
    pieces += [p for p in (Fraction(int(rest)), rest - int(rest)) if p > 0]
    bars = []
    for piece in pieces:
        bars.append(Bar(start, piece, *meter_for_length(piece, 4)))
        start += piece
    return bars


def bar_index(bars: Sequence[Bar], offset: Q) -> int:
    """Index of the bar holding ``offset`` (the first bar for offsets before it)."""
    lo, hi = 0, len(bars) - 1
    target = float(offset)
    while lo < hi:  # bisection on floats, then an exact correction
        mid = (lo + hi + 1) // 2
        if float(bars[mid].start) <= target:
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and bars[lo].start > offset:
        lo -= 1
    while lo + 1 < len(bars) and bars[lo + 1].start <= offset:
        lo += 1
    return lo


def metric_levels(bar: Bar) -> list[Q]:
    """Spacing of the bar's metric boundaries, coarse to fine (half bar, beat, …, 64th)."""
    return _metric_levels(bar.full_length, *bar.meter)


@lru_cache(maxsize=256)
def _metric_levels(length: Q, num: int, den: int) -> list[Q]:
    unit = Fraction(4, den)
    compound = is_compound(num, den)
    beat = unit * 3 if compound else unit
    levels: list[Q] = []
    beats = length / beat
    if beats.denominator == 1 and beats >= 4 and beats % 2 == 0:
        levels.append(length / 2)
    levels.append(beat)
    sub = beat / 3 if compound else beat / 2
    while sub >= FINEST_LEVEL:
        levels.append(sub)
        sub /= 2
    return levels
