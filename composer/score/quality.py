"""How readable is a written score? Checks on a music21 score (best: re-read from our MusicXML).

* full bars: every voice of every measure fills exactly its time signature;
* notatable durations: plain or single-dotted whole … 64th notes, or 3:2 triplets;
* key signature: present, with as many sharps or flats as music21's key analysis says;
* ledger lines: notes needing more than three ledger lines on their staff's clef.

``benchmarks/score_quality.py`` runs these over a corpus; tests run them on a few pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import music21

NOTATABLE_TYPES = frozenset({"breve", "whole", "half", "quarter", "eighth", "16th", "32nd", "64th"})
MAX_LEDGER_LINES = 3


@dataclass
class QualityCounts:
    """Counts over one or more pieces; ``summary()`` turns them into fractions."""

    measures: int = 0  # measure × staff
    full_measures: int = 0
    notes: int = 0  # notes and chords (a chord counts once)
    notatable: int = 0
    pitches: int = 0  # sounding pitches (each note of a chord)
    ledger_over_3: int = 0
    pieces: int = 0
    key_signature: int = 0  # pieces whose key signature matches the analysis
    keys: list[tuple[str, int | None, int | None]] = field(default_factory=list)  # per piece:
    #   (name, sharps written, sharps of music21's analysis)
    problems: list[str] = field(default_factory=list)  # the first few failures, for reports

    def add(self, other: QualityCounts) -> None:
        for name in ("measures", "full_measures", "notes", "notatable", "pitches",
                     "ledger_over_3", "pieces", "key_signature"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.keys.extend(other.keys)
        self.problems.extend(other.problems[: max(0, 20 - len(self.problems))])

    def summary(self) -> dict[str, float]:
        def ratio(a: int, b: int, empty: float) -> float:
            return round(a / b, 4) if b else empty

        return {
            "full_measures": ratio(self.full_measures, self.measures, 1.0),
            "notatable": ratio(self.notatable, self.notes, 1.0),
            "key_signature": ratio(self.key_signature, self.pieces, 0.0),
            "ledger_over_3": ratio(self.ledger_over_3, self.pitches, 0.0),
        }


def is_notatable(duration: music21.duration.Duration) -> bool:
    """One symbol: a plain or dotted standard value, optionally in a 3:2 triplet."""
    if duration.type not in NOTATABLE_TYPES or duration.dots > 1:
        return False
    return all(t.numberNotesActual == 3 and t.numberNotesNormal == 2 for t in duration.tuplets)


def ledger_lines(pitch: music21.pitch.Pitch, clef: music21.clef.Clef) -> int:
    position = pitch.diatonicNoteNum - (clef.lowestLine or 31)
    if position > 8:
        return (position - 8) // 2
    if position < 0:
        return -position // 2
    return 0


def check_stream(stream: music21.stream.Score, name: str = "score") -> QualityCounts:
    """The four checks on one score."""
    import music21

    counts = QualityCounts(pieces=1)
    staves = list(stream.parts) or [stream]
    for staff in staves:
        _check_staff(staff, counts, name, music21)
    first = staves[0].recurse().getElementsByClass(music21.key.KeySignature).first()
    analysed = stream.analyze("key")
    counts.keys.append((name, None if first is None else int(first.sharps),
                        None if analysed is None else int(analysed.sharps)))
    if first is None:
        counts.problems.append(f"{name}: no key signature")
        return counts
    # enharmonic signatures (Db major's 5 flats, C# major's 7 sharps) name the same key
    if analysed is not None and (int(analysed.sharps) - int(first.sharps)) % 12 == 0:
        counts.key_signature = 1
    else:
        counts.problems.append(f"{name}: key signature {first.sharps} sharps, analysis says "
                               f"{analysed} ({getattr(analysed, 'sharps', None)} sharps)")
    return counts


def _check_staff(staff: music21.stream.Stream, counts: QualityCounts, name: str,
                 music21: object) -> None:
    m21 = music21  # the module, passed in to keep imports lazy
    clef = m21.clef.TrebleClef()  # type: ignore[attr-defined]
    meter = None
    for measure in staff.getElementsByClass(m21.stream.Measure):  # type: ignore[attr-defined]
        meter = measure.timeSignature or meter
        bar = Fraction(meter.barDuration.quarterLength) if meter else Fraction(4)
        counts.measures += 1
        voices = list(measure.voices) or [measure]
        padding = Fraction(measure.paddingLeft or 0) if measure.number == 0 else Fraction(0)
        filled = all(  # an anacrusis (bar 0) fills its bar together with its unwritten start
            sum(Fraction(e.duration.quarterLength) for e in v.notesAndRests if not e.duration.isGrace)
            + padding == bar for v in voices)
        if filled:
            counts.full_measures += 1
        elif len(counts.problems) < 20:
            counts.problems.append(f"{name}: measure {measure.number} does not fill {meter}")
        events = sorted(
            measure.recurse().getElementsByClass((m21.clef.Clef, m21.note.NotRest)),  # type: ignore[attr-defined]
            key=lambda e: (e.getOffsetInHierarchy(measure), not isinstance(e, m21.clef.Clef)))  # type: ignore[attr-defined]
        for element in events:
            if isinstance(element, m21.clef.Clef):  # type: ignore[attr-defined]
                clef = element
                continue
            if element.duration.isGrace:
                continue
            counts.notes += 1
            if is_notatable(element.duration):
                counts.notatable += 1
            elif len(counts.problems) < 20:
                counts.problems.append(f"{name}: measure {measure.number}: unnotatable "
                                       f"{element.duration.fullName}")
            for pitch in element.pitches:
                counts.pitches += 1
                counts.ledger_over_3 += ledger_lines(pitch, clef) > MAX_LEDGER_LINES
