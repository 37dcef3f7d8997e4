"""One staff laid out bar by bar: each voice's notes split into notatable pieces, rests
filling the gaps, triplets bracketed beat by beat, and beams.

Everything works on exact quarter-note fractions and knows nothing of music21, so the
rules are small functions with their own tests (``meter``, ``grid``, ``durations``,
``beams``); ``score.build`` turns the result into music21 objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise

from composer.score.beams import mark_beams
from composer.score.durations import Event, Piece, split_in_bar, tie_flags
from composer.score.grid import Grid
from composer.score.meter import Bar, Q, bar_index


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
        for (b, s, e, t), tie in zip(spans, tie_flags(len(spans)), strict=True):
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
    return mark_beams(_mark_tuplets(pieces, bar, grid), bar)


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
