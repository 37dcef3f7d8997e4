"""Notation planning in plain Python: bars, the quantization grid, notatable durations.

Everything here works on exact quarter-note fractions and knows nothing of music21,
so the rules (where a note is split, which durations exist, when a beat holds
triplets) are small functions with their own tests. ``score_build`` turns the plan
into music21 objects.

Durations follow the usual engraving rules: a note that crosses the middle of a 4/4
bar, or a beat it does not start on, is split and tied; within a beat that the grid
fills with triplets every piece is a 3:2 tuplet and the pieces of one beat form one
bracket.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise

Q = Fraction  # durations and offsets in quarter notes

PLAIN_VALUES = tuple(Fraction(8, 2**k) for k in range(8))  # breve, whole … 64th
DOTTED_VALUES = tuple(v * Fraction(3, 2) for v in PLAIN_VALUES[1:-1])  # dotted whole … dotted 32nd
NOTATABLE = frozenset(PLAIN_VALUES + DOTTED_VALUES)
FINEST_LEVEL = Fraction(1, 16)  # metric levels go down to 64th notes
TRIPLET_PIECES = (Fraction(2, 3), Fraction(1, 3), Fraction(1, 6))  # within a quarter-note beat
PLAYED_PENALTY_FACTOR = 5  # finer grids cost this much more when the notes fit no grid exactly
TYPE_NAMES = {
    Fraction(8): "breve", Fraction(4): "whole", Fraction(2): "half", Fraction(1): "quarter",
    Fraction(1, 2): "eighth", Fraction(1, 4): "16th", Fraction(1, 8): "32nd", Fraction(1, 16): "64th",
}


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


# ---------------------------------------------------------------- meters and bars


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


# ---------------------------------------------------------------- quantization


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


# ---------------------------------------------------------------- durations


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


# ---------------------------------------------------------------- voices → pieces per bar


def _tie_flags(count: int) -> list[str | None]:
    if count == 1:
        return [None]
    return ["start"] + ["continue"] * (count - 2) + ["stop"]


def voice_notes(events: Sequence[Event], bars: Sequence[Bar], grid: Grid) -> dict[int, list[Piece]]:
    """Note pieces per bar index for one voice: notes cut at bar lines and tied; no rests."""
    notes_by_bar: dict[int, list[Piece]] = {}
    for event in events:
        spans: list[tuple[int, Q, Q, bool]] = []
        at = event.start
        while at < event.end:
            b = bar_index(bars, at)
            bar = bars[b]
            stop = min(event.end, bar.end)
            if stop <= at:
                raise ValueError(f"note at {event.start} runs past the last bar")
            spans += [(b, s, e, t) for s, e, t in split_in_bar(at, stop, bar, grid)]
            at = stop
        for (b, s, e, t), tie in zip(spans, _tie_flags(len(spans)), strict=True):
            notes_by_bar.setdefault(b, []).append(
                Piece(s - bars[b].start, e - s, event.pitches, tie, "continue" if t else None))
    return notes_by_bar


def bar_voices(voices: Sequence[Sequence[Piece]], bar: Bar, grid: Grid) -> list[tuple[int, list[Piece]]]:
    """The voices written in one bar: ``(voice index, pieces with rests)``.

    Voices silent in the bar are left out; voices whose notes do not overlap in the
    bar are written as one; an empty bar gets one whole-bar rest.
    """
    present = [(v, list(pieces)) for v, pieces in enumerate(voices) if pieces]
    if not present:
        return [(0, _with_rests([], bar, grid))]
    merged = sorted((p for _, pieces in present for p in pieces), key=lambda p: p.offset)
    if len(present) == 1 or all(a.offset + a.length <= b.offset for a, b in pairwise(merged)):
        return [(present[0][0], _with_rests(merged, bar, grid))]
    return [(v, _with_rests(pieces, bar, grid)) for v, pieces in present]


def lay_out_staff(voices: Sequence[Sequence[Event]], bars: Sequence[Bar],
                  grid: Grid) -> list[list[tuple[int, list[Piece]]]]:
    """Per bar, the voices of a staff to write (see ``bar_voices``)."""
    by_voice = [voice_notes(events, bars, grid) for events in voices]
    return [bar_voices([v.get(b, []) for v in by_voice], bar, grid) for b, bar in enumerate(bars)]


def _with_rests(notes: list[Piece], bar: Bar, grid: Grid) -> list[Piece]:
    if not notes and not bar.shift:
        return [Piece(Fraction(0), bar.length, (), full_bar=True)]
    notes = sorted(notes, key=lambda p: p.offset)
    pieces: list[Piece] = []
    at = Fraction(0)
    for note in [*notes, None]:
        until = note.offset if note is not None else bar.length
        if until > at:
            for s, e, t in split_in_bar(bar.start + at, bar.start + until, bar, grid):
                pieces.append(Piece(s - bar.start, e - s, (), None, "continue" if t else None))
        if note is not None:
            pieces.append(note)
            at = note.offset + note.length
    return _mark_beams(_mark_tuplets(pieces, bar, grid), bar)


def _mark_tuplets(pieces: list[Piece], bar: Bar, grid: Grid) -> list[Piece]:
    """Set "start" on the first and "stop" on the last tuplet piece of each triplet beat."""
    out = list(pieces)
    groups: dict[int, list[int]] = {}
    for k, piece in enumerate(out):
        if piece.tuplet:
            groups.setdefault(grid.index(bar.start + piece.offset), []).append(k)
    for members in groups.values():
        first, last = members[0], members[-1]
        out[first] = _replace(out[first], tuplet="start")
        out[last] = _replace(out[last], tuplet="stop")
    return out


def _replace(piece: Piece, **changes: object) -> Piece:
    return replace(piece, **changes)  # type: ignore[arg-type]


def beam_groups(bar: Bar) -> list[tuple[Q, Q]]:
    """Spans of a bar within which short notes are beamed together (offsets from its origin).

    A beat in simple meters, a dotted beat in compound ones; bars of 2/8 or 3/8 beam
    whole, other x/8 and x/16 bars in groups of two units and a final three.
    """
    num, den = bar.meter
    unit = Fraction(4, den)
    if is_compound(num, den):
        sizes = [unit * 3] * (num // 3)
    elif den >= 8 and num <= 3:
        sizes = [bar.full_length]
    elif den >= 8:
        sizes = [unit * 2] * (num // 2 - 1) + [unit * (2 + num % 2)]
    else:
        sizes = [unit] * num
    spans, at = [], Fraction(0)
    for size in sizes:
        spans.append((at, at + size))
        at += size
    if at < bar.full_length:
        spans.append((at, bar.full_length))
    return spans


def beam_count(piece: Piece) -> int:
    """Beams (or flags) of the written value: 1 for an eighth, 2 for a 16th, …"""
    plain = piece.written if piece.written in TYPE_NAMES else piece.written * Fraction(2, 3)
    count = 0
    while plain < Fraction(1) and count < 6:
        plain *= 2
        count += 1
    return count


def _mark_beams(pieces: list[Piece], bar: Bar) -> list[Piece]:
    out = list(pieces)
    for start, end in beam_groups(bar):
        run: list[int] = []
        for k, piece in enumerate([*out, None]):
            inside = piece is not None and start <= piece.offset + bar.shift < end
            beamable = inside and piece.pitches and beam_count(piece) > 0
            if beamable:
                run.append(k)
                continue
            if len(run) >= 2:
                _beam_run(out, run)
            run = []
    return out


def _beam_run(out: list[Piece], run: list[int]) -> None:
    counts = [beam_count(out[k]) for k in run]
    beams: list[list[str]] = [[] for _ in run]
    for level in range(1, max(counts) + 1):
        i = 0
        while i < len(run):
            if counts[i] < level:
                i += 1
                continue
            j = i
            while j + 1 < len(run) and counts[j + 1] >= level:
                j += 1
            if level == 1 or j > i:
                beams[i].append("start")
                for m in range(i + 1, j):
                    beams[m].append("continue")
                beams[j].append("stop")
            else:
                beams[i].append("partial-right" if i == 0 else "partial-left")
            i = j + 1
    for k, kinds in zip(run, beams, strict=True):
        out[k] = replace(out[k], beams=tuple(kinds))
