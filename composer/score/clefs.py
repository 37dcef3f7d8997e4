"""Clefs: ledger lines, the clef a part's range suits, and where a part changes clef.

Pitches are counted in diatonic steps (C4 = 29, as music21 counts), spelt with sharps;
a clef is known by the step of its bottom line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# clef → diatonic step number of its bottom line (C4 = 29, as music21 counts)
CLEF_BOTTOM_LINE = {
    "treble": 31, "treble8vb": 24, "alto": 25, "tenor": 23, "bass": 19, "bass8vb": 12,
}


MAJOR_STEPS = (0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6)  # pitch class → diatonic step (sharp spelling)


MIDDLE_C = 60


_NAME_CLEFS = [  # words in a track name → preferred clef (first match wins)
    (r"\bsoprano|\bdiscant|\bcantus|\bsuperius", "treble"),
    (r"\bmezzo|\balto\b|\bcontra?alto|\baltus", "treble"),
    (r"\btenor|\btenore", "treble8vb"),
    (r"\bbaritone|\bbass|\bbasso|\bbassus", "bass"),
    (r"\bviola\b", "alto"),
    (r"\bcello|\bvioloncello|\bbassoon|\btrombone|\btuba", "bass"),
    (r"\bviolin|\bflute|\boboe|\bclarinet|\btrumpet", "treble"),
]


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


CLEF_CHANGES = {  # an instrument's main clef → the clefs its part may change to
    "bass": ("bass", "tenor", "treble"),  # cello, bassoon, trombone
    "alto": ("alto", "treble"),  # viola
    "bass8vb": ("bass8vb", "bass"),  # double bass
}


CLEF_SWITCH_COST = 4.0  # ledger lines a clef change must save


OTHER_CLEF_COST = 0.3  # per note (and per empty bar) away from the main clef


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


def beyond_with_clefs(bar_pitches: Sequence[Sequence[int]], clefs: dict[int, str], lines: int) -> float:
    total = beyond = 0
    clef = clefs[0]
    for b, pitches in enumerate(bar_pitches):
        clef = clefs.get(b, clef)
        total += len(pitches)
        beyond += sum(ledger_lines(p, clef) > lines for p in pitches)
    return beyond / max(1, total)
