"""Staves: which notes of a part go on which staff, in which voice.

A part whose range does not fit one clef becomes a grand staff: the lines of a
polyphonic part (the four voices of a chorale in one choir track) go to the staff their
register suits, two to a staff; a single wide line, or a keyboard part, is split note by
note at middle C.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from composer.music.instruments import Instrument
from composer.score.clefs import (
    MIDDLE_C,
    best_clef,
    beyond_with_clefs,
    clef_plan,
    fraction_beyond,
    ledger_lines,
)
from composer.score.durations import Event
from composer.score.meter import Q
from composer.score.voices import Line, chord_events, merge_into, separate_lines


@dataclass
class Staff:
    clefs: dict[int, str]  # bar index → clef from that bar on (bar 0 always present)
    voices: list[list[Event]]  # voice 1 (highest) first; each sorted and non-overlapping

    @property
    def clef(self) -> str:
        return self.clefs[0]


def plan_staves(notes: Sequence[tuple[Q, Q, int]], instrument: Instrument, preferred_clef: str,
                bar_of: Callable[[Q], int], n_bars: int, *, grand_staff_fraction: float,
                max_voices: int, split_pitch: int = MIDDLE_C) -> tuple[list[Staff], int]:
    """One staff (with clef changes where the instrument reads them), or a treble + bass
    grand staff, for a part's notes; ``bar_of`` maps an offset to its bar index.

    Returns the staves and the number of notes shortened to fit ``max_voices`` per staff.
    """
    pitches = [p for _, _, p in notes]
    bar_pitches: list[list[int]] = [[] for _ in range(n_bars)]
    for start, _, pitch in notes:
        bar_pitches[bar_of(start)].append(pitch)
    clef = best_clef(pitches, preferred_clef)
    melodic = instrument.family in ("strings", "winds", "brass", "plucked")
    clefs = clef_plan(bar_pitches, clef, changes=melodic and clef == preferred_clef)
    events = chord_events(notes, instrument.chords or melodic)
    # a line reads well up to three ledger lines; several voices stacked on them do not
    far = 2 if not melodic and _overlapping(notes) else 3
    # a bowed or blown part reads on one staff in any edition (ledger lines, clef changes),
    # never on a piano's grand staff
    one_staff = instrument.family in ("strings", "winds", "brass")
    if one_staff or beyond_with_clefs(bar_pitches, clefs, far) <= grand_staff_fraction:
        staff, cut = _staff(clefs, separate_lines(events), max_voices)
        return [staff], cut
    upper, lower = _split_by_lines(events, instrument.chords or melodic, split_pitch)
    staves, cut = [], 0
    for staff_clef, lines in (("treble", upper), ("bass", lower)):
        staff, n = _staff({0: staff_clef}, lines, max_voices)
        staves.append(staff)
        cut += n
    return staves, cut


def _overlapping(notes: Sequence[tuple[Q, Q, int]]) -> bool:
    """Whether any two notes sound at once (the part holds more than one voice)."""
    latest_end = None
    for start, end, _ in sorted(notes):
        if latest_end is not None and start < latest_end:
            return True
        latest_end = end if latest_end is None else max(latest_end, end)
    return False


def _staff(clefs: dict[int, str], lines: list[Line], max_voices: int) -> tuple[Staff, int]:
    lines, cut = merge_into(lines, max_voices)
    return Staff(clefs, [line.events for line in lines if line.events]), cut


def _split_by_lines(events: list[Event], chords: bool, split_pitch: int) -> tuple[list[Line], list[Line]]:
    """Lines of a polyphonic part to the staff their register suits, else note by note."""
    if not chords:
        lines = sorted(separate_lines(events), key=lambda ln: -ln.mean_pitch)
        if len(lines) >= 2:
            by_register = sum(ln.mean_pitch >= split_pitch for ln in lines)

            def cost(k: int) -> tuple[float, int]:
                crowded = max(0, k - 2) + max(0, len(lines) - k - 2)  # more than 2 voices a staff
                high = [p for ln in lines[:k] for e in ln.events for p in e.pitches]
                low = [p for ln in lines[k:] for e in ln.events for p in e.pitches]
                far = (sum(ledger_lines(p, "treble") > 2 for p in high)
                       + sum(ledger_lines(p, "bass") > 2 for p in low)) / max(1, len(high) + len(low))
                return crowded + 2 * far, abs(k - by_register)

            k = min(range(1, len(lines)), key=cost)
            upper, lower = lines[:k], lines[k:]
            fits_upper = all(_fits(ln, "treble") for ln in upper)
            fits_lower = all(_fits(ln, "bass") for ln in lower)
            if fits_upper and fits_lower:
                return upper, lower
    high: list[Event] = []
    low: list[Event] = []
    for event in events:
        top = tuple(p for p in event.pitches if p >= split_pitch)
        bottom = tuple(p for p in event.pitches if p < split_pitch)
        if top:
            high.append(Event(event.start, event.end, top))
        if bottom:
            low.append(Event(event.start, event.end, bottom))
    return separate_lines(high), separate_lines(low)


def _fits(line: Line, clef: str) -> bool:
    pitches = [p for e in line.events for p in e.pitches]
    return fraction_beyond(pitches, clef, 3) <= 0.1
