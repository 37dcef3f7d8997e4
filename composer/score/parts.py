"""Parts, staves and voices in plain Python: which notes go on which staff, in which voice.

A track becomes a part named after its instrument. A part whose range does not fit
one clef becomes a grand staff: the lines of a polyphonic part (the four voices of a
chorale in one choir track) go to the staff their register suits, two to a staff;
a single wide line, or a keyboard part, is split note by note at middle C.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from composer.score.layout import Event, Q

# clef → diatonic step number of its bottom line (C4 = 29, as music21 counts)
CLEF_BOTTOM_LINE = {
    "treble": 31, "treble8vb": 24, "alto": 25, "tenor": 23, "bass": 19, "bass8vb": 12,
}
MAJOR_STEPS = (0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6)  # pitch class → diatonic step (sharp spelling)
MIDDLE_C = 60


@dataclass(frozen=True)
class Instrument:
    """How a General MIDI program is written."""

    name: str  # part name printed before the first system
    abbreviation: str  # printed before later systems
    family: str  # "voice", "strings", "keyboard", "winds", "brass", "plucked", "other"
    clef: str  # preferred clef, see CLEF_BOTTOM_LINE
    chords: bool  # plays chords (notes with the same start and end share a stem)


_GM_RANGES: list[tuple[range, Instrument]] = [
    (range(0, 6), Instrument("Piano", "Pno.", "keyboard", "treble", True)),
    (range(6, 7), Instrument("Harpsichord", "Hpscd.", "keyboard", "treble", True)),
    (range(7, 8), Instrument("Clavinet", "Clav.", "keyboard", "treble", True)),
    (range(8, 16), Instrument("", "", "keyboard", "treble", True)),
    (range(16, 21), Instrument("Organ", "Org.", "keyboard", "treble", True)),
    (range(21, 24), Instrument("Accordion", "Acc.", "keyboard", "treble", True)),
    (range(24, 32), Instrument("Guitar", "Gtr.", "plucked", "treble8vb", True)),
    (range(32, 40), Instrument("Bass", "B.", "plucked", "bass", False)),
    (range(40, 41), Instrument("Violin", "Vln.", "strings", "treble", False)),
    (range(41, 42), Instrument("Viola", "Vla.", "strings", "alto", False)),
    (range(42, 43), Instrument("Violoncello", "Vc.", "strings", "bass", False)),
    (range(43, 44), Instrument("Contrabass", "Cb.", "strings", "bass8vb", False)),
    (range(44, 46), Instrument("Strings", "Str.", "strings", "treble", False)),
    (range(46, 47), Instrument("Harp", "Hp.", "keyboard", "treble", True)),
    (range(47, 48), Instrument("Timpani", "Timp.", "other", "bass", False)),
    (range(48, 52), Instrument("Strings", "Str.", "strings", "treble", False)),
    (range(52, 55), Instrument("Choir", "Ch.", "voice", "treble", False)),
    (range(56, 57), Instrument("Trumpet", "Tpt.", "brass", "treble", False)),
    (range(57, 58), Instrument("Trombone", "Tbn.", "brass", "bass", False)),
    (range(58, 59), Instrument("Tuba", "Tba.", "brass", "bass", False)),
    (range(59, 60), Instrument("Trumpet", "Tpt.", "brass", "treble", False)),
    (range(60, 61), Instrument("Horn", "Hn.", "brass", "treble", False)),
    (range(61, 64), Instrument("Brass", "Br.", "brass", "treble", False)),
    (range(64, 65), Instrument("Soprano Saxophone", "S. Sax.", "winds", "treble", False)),
    (range(65, 66), Instrument("Alto Saxophone", "A. Sax.", "winds", "treble", False)),
    (range(66, 67), Instrument("Tenor Saxophone", "T. Sax.", "winds", "treble8vb", False)),
    (range(67, 68), Instrument("Baritone Saxophone", "Bar. Sax.", "winds", "bass", False)),
    (range(68, 69), Instrument("Oboe", "Ob.", "winds", "treble", False)),
    (range(69, 70), Instrument("English Horn", "E. Hn.", "winds", "treble", False)),
    (range(70, 71), Instrument("Bassoon", "Bsn.", "winds", "bass", False)),
    (range(71, 72), Instrument("Clarinet", "Cl.", "winds", "treble", False)),
    (range(72, 73), Instrument("Piccolo", "Picc.", "winds", "treble", False)),
    (range(73, 74), Instrument("Flute", "Fl.", "winds", "treble", False)),
    (range(74, 75), Instrument("Recorder", "Rec.", "winds", "treble", False)),
    (range(75, 80), Instrument("", "", "winds", "treble", False)),
    (range(110, 111), Instrument("Fiddle", "Fdl.", "strings", "treble", False)),
    (range(109, 110), Instrument("Bagpipe", "Bagp.", "winds", "treble", False)),
]
_GENERIC = Instrument("", "", "other", "treble", True)

VOICE_TYPES: list[tuple[str, str, str, int]] = [  # name, abbreviation, clef, lowest mean pitch
    ("Soprano", "S.", "treble", 67),
    ("Alto", "A.", "treble", 60),
    ("Tenor", "T.", "treble8vb", 53),
    ("Bass", "B.", "bass", 0),
]
_NAME_CLEFS = [  # words in a track name → preferred clef (first match wins)
    (r"\bsoprano|\bdiscant|\bcantus|\bsuperius", "treble"),
    (r"\bmezzo|\balto\b|\bcontra?alto|\baltus", "treble"),
    (r"\btenor|\btenore", "treble8vb"),
    (r"\bbaritone|\bbass|\bbasso|\bbassus", "bass"),
    (r"\bviola\b", "alto"),
    (r"\bcello|\bvioloncello|\bbassoon|\btrombone|\btuba", "bass"),
    (r"\bviolin|\bflute|\boboe|\bclarinet|\btrumpet", "treble"),
]
_GENERIC_NAME = re.compile(r"^\s*(track|untitled|midi|channel|staff|part|instrument|inst)?"
                           r"[\s_#-]*\d*\s*$", re.IGNORECASE)


def instrument_for(program: int) -> Instrument:
    for programs, instrument in _GM_RANGES:
        if program in programs:
            return instrument
    return _GENERIC


def meaningful_name(name: str) -> str | None:
    """The track name if it names something ("Soprano", "Violin I"), else None."""
    text = " ".join(name.split())
    if not text or _GENERIC_NAME.match(text) or len(text) > 40:
        return None
    return text


def clef_from_name(name: str) -> str | None:
    lowered = name.lower()
    for pattern, clef in _NAME_CLEFS:
        if re.search(pattern, lowered):
            return clef
    return None


def diatonic_step(pitch: int) -> int:
    """Diatonic step number of a MIDI pitch (C4 = 29), spelt with sharps."""
    return (pitch // 12 - 1) * 7 + MAJOR_STEPS[pitch % 12] + 1


def ledger_lines(pitch: int, clef: str) -> int:
    """Ledger lines a pitch needs on a staff with ``clef``."""
    position = diatonic_step(pitch) - CLEF_BOTTOM_LINE[clef]
    if position > 8:
        return (position - 8) // 2
    if position < 0:
        return -position // 2
    return 0


def fraction_beyond(pitches: Sequence[int], clef: str, lines: int) -> float:
    if not pitches:
        return 0.0
    return sum(ledger_lines(p, clef) > lines for p in pitches) / len(pitches)


def best_clef(pitches: Sequence[int], preferred: str, tolerance: float = 0.02) -> str:
    """The preferred clef unless treble or bass keeps clearly more notes near the staff."""
    def cost(clef: str) -> tuple[float, float]:
        beyond = fraction_beyond(pitches, clef, 2)
        mean = sum(ledger_lines(p, clef) for p in pitches) / max(1, len(pitches))
        return beyond, mean

    candidates = [preferred] + [c for c in ("treble", "bass") if c != preferred]
    best = min(candidates, key=cost)
    if cost(preferred)[0] <= cost(best)[0] + tolerance:
        return preferred
    return best


# ---------------------------------------------------------------- voices


@dataclass
class Line:
    """A monophonic succession of events (chords count as one event)."""

    events: list[Event] = field(default_factory=list)

    @property
    def end(self) -> Q:
        return self.events[-1].end

    @property
    def last_pitch(self) -> int:
        return self.events[-1].pitches[-1]

    @property
    def mean_pitch(self) -> float:
        pitches = [p for e in self.events for p in e.pitches]
        return sum(pitches) / len(pitches)


NEW_LINE_COST = 48.0  # semitones of leap worth opening a new line while one is free


def separate_lines(events: Sequence[Event]) -> list[Line]:
    """Split overlapping events into monophonic lines that follow the voice leading.

    Events starting together are matched to the free lines in pitch order (highest to
    highest) so that crossing lines stay apart; where no free line is near enough a
    new line starts.
    """
    lines: list[Line] = []
    ordered = sorted(events, key=lambda e: (e.start, -e.pitches[-1]))
    k = 0
    while k < len(ordered):
        start = ordered[k].start
        group = []
        while k < len(ordered) and ordered[k].start == start:
            group.append(ordered[k])
            k += 1
        free = sorted((line for line in lines if line.end <= start), key=lambda ln: -ln.last_pitch)
        for event, line in _match(group, free):
            if line is None:
                line = Line()
                lines.append(line)
            line.events.append(event)
    return lines


def _match(group: list[Event], free: list[Line]) -> list[tuple[Event, Line | None]]:
    """Order-preserving assignment of new events (high to low) to free lines (high to low)."""
    n, m = len(group), len(free)
    inf = float("inf")
    # cost[i][j]: best cost placing the first i events using the first j lines
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if j < m and here < cost[i][j + 1]:  # leave line j idle
                cost[i][j + 1], move[i][j + 1] = here, (i, j)
            if i < n:
                opened = here + NEW_LINE_COST  # event i opens a new line
                if opened < cost[i + 1][j]:
                    cost[i + 1][j], move[i + 1][j] = opened, (i, j)
                if j < m:
                    leap = here + abs(group[i].pitches[-1] - free[j].last_pitch)
                    if leap < cost[i + 1][j + 1]:
                        cost[i + 1][j + 1], move[i + 1][j + 1] = leap, (i, j)
    pairs: list[tuple[Event, Line | None]] = []
    i, j = n, m
    while (i, j) != (0, 0):
        step = move[i][j]
        assert step is not None
        pi, pj = step
        if pi == i - 1 and pj == j - 1:
            pairs.append((group[i - 1], free[j - 1]))
        elif pi == i - 1:
            pairs.append((group[i - 1], None))
        i, j = pi, pj
    pairs.reverse()
    return pairs


def merge_into(lines: list[Line], limit: int) -> tuple[list[Line], int]:
    """Keep at most ``limit`` lines: extra lines join the nearest in register.

    An event joins a chord that starts and ends with it, or fills a gap; where it
    overlaps, the earlier event is shortened. Returns the lines and how many events
    were shortened.
    """
    lines = sorted(lines, key=lambda ln: -ln.mean_pitch)
    shortened = 0
    while len(lines) > limit:
        smallest = min(range(len(lines)), key=lambda i: len(lines[i].events))
        extra = lines.pop(smallest)
        target = min(lines, key=lambda ln: abs(ln.mean_pitch - extra.mean_pitch))
        merged, cut = _merge_events(target.events, extra.events)
        target.events = merged
        shortened += cut
    return lines, shortened


def _merge_events(base: list[Event], extra: list[Event]) -> tuple[list[Event], int]:
    by_span = {(e.start, e.end): e for e in base}
    rest = []
    for event in extra:
        twin = by_span.get((event.start, event.end))
        if twin is not None:
            by_span[(event.start, event.end)] = Event(
                twin.start, twin.end, tuple(sorted(set(twin.pitches + event.pitches))))
        else:
            rest.append(event)
    events = sorted([*by_span.values(), *rest], key=lambda e: (e.start, e.end))
    out: list[Event] = []
    cut = 0
    for event in events:
        if out and out[-1].start == event.start:
            prev = out.pop()
            end = min(prev.end, event.end)
            out.append(Event(prev.start, end, tuple(sorted(set(prev.pitches + event.pitches)))))
            cut += prev.end != event.end
            continue
        if out and out[-1].end > event.start:
            prev = out.pop()
            out.append(Event(prev.start, event.start, prev.pitches))
            cut += 1
        out.append(event)
    return out, cut


def chord_events(notes: Sequence[tuple[Q, Q, int]], chords: bool) -> list[Event]:
    """Notes → events; with ``chords`` notes that start and end together share one event."""
    if not chords:
        return [Event(s, e, (p,)) for s, e, p in notes]
    grouped: dict[tuple[Q, Q], list[int]] = {}
    for s, e, p in notes:
        grouped.setdefault((s, e), []).append(p)
    return [Event(s, e, tuple(sorted(set(ps)))) for (s, e), ps in grouped.items()]


# ---------------------------------------------------------------- staves


CLEF_CHANGES = {  # an instrument's main clef → the clefs its part may change to
    "bass": ("bass", "tenor", "treble"),  # cello, bassoon, trombone
    "alto": ("alto", "treble"),  # viola
    "bass8vb": ("bass8vb", "bass"),  # double bass
}
CLEF_SWITCH_COST = 4.0  # ledger lines a clef change must save
OTHER_CLEF_COST = 0.3  # per note (and per empty bar) away from the main clef


@dataclass
class Staff:
    clefs: dict[int, str]  # bar index → clef from that bar on (bar 0 always present)
    voices: list[list[Event]]  # voice 1 (highest) first; each sorted and non-overlapping

    @property
    def clef(self) -> str:
        return self.clefs[0]


def clef_plan(bar_pitches: Sequence[Sequence[int]], main: str, changes: bool) -> dict[int, str]:
    """The clef for each bar (only where it changes): the main clef, or where a passage
    would need many ledger lines one of the clefs the instrument reads (cello: tenor, treble).
    """
    options = CLEF_CHANGES.get(main, (main,)) if changes else (main,)
    if len(options) == 1 or not bar_pitches:
        return {0: main}

    def bar_cost(pitches: Sequence[int], clef: str) -> float:
        ledgers = sum(max(0, ledger_lines(p, clef) - 1) for p in pitches)
        away = 0.0 if clef == main else OTHER_CLEF_COST * max(1, len(pitches))
        return ledgers + away

    # Viterbi over bars: cost[c] of the best clef sequence ending in clef c
    cost = {c: bar_cost(bar_pitches[0], c) for c in options}
    back: list[dict[str, str]] = []
    for pitches in bar_pitches[1:]:
        step: dict[str, str] = {}
        new: dict[str, float] = {}
        for c in options:
            prev = min(options, key=lambda p: cost[p] + (0 if p == c else CLEF_SWITCH_COST))
            step[c] = prev
            new[c] = cost[prev] + (0 if prev == c else CLEF_SWITCH_COST) + bar_cost(pitches, c)
        back.append(step)
        cost = new
    clef = min(options, key=lambda c: cost[c])
    sequence = [clef]
    for step in reversed(back):
        clef = step[clef]
        sequence.append(clef)
    sequence.reverse()
    return {b: c for b, c in enumerate(sequence) if b == 0 or c != sequence[b - 1]}


def _beyond_with_clefs(bar_pitches: Sequence[Sequence[int]], clefs: dict[int, str], lines: int) -> float:
    total = beyond = 0
    clef = clefs[0]
    for b, pitches in enumerate(bar_pitches):
        clef = clefs.get(b, clef)
        total += len(pitches)
        beyond += sum(ledger_lines(p, clef) > lines for p in pitches)
    return beyond / max(1, total)


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
    if _beyond_with_clefs(bar_pitches, clefs, far) <= grand_staff_fraction:
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
