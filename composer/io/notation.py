"""music21 stream → symusic score: the bridge from notation formats to the one score type.

music21's own MIDI writer is slow and drops part identity (every part without an
instrument becomes program 0), so notes are copied across directly: one symusic
track per part, with a program chosen by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import music21
    import symusic

TICKS_PER_QUARTER = 480  # divisible by 3, 4, 5 and 16: triplets and 64ths land on ticks
DEFAULT_VELOCITY = 80
DEFAULT_QPM = 100.0

ProgramChooser = Callable[[int, int, str], int]
"""(part index, number of parts, part/instrument name) → General MIDI program."""


def _instrument_program(part_index: int, n_parts: int, name: str) -> int:
    return 0


def _ticks(quarter_length: float | Fraction) -> int:
    return round(float(quarter_length) * TICKS_PER_QUARTER)


def _part_name(part: music21.stream.Stream) -> str:
    inst = part.getInstrument(returnDefault=False)
    for candidate in (
        getattr(part, "partName", None),
        getattr(inst, "partName", None),
        getattr(inst, "instrumentName", None),
    ):
        if candidate:
            return str(candidate)
    return ""


def _pickup_shift(part: music21.stream.Stream) -> float:
    """Quarters of silence that turn an anacrusis into a full first bar."""
    measures = part.getElementsByClass("Measure")
    if not measures:
        return 0.0
    return float(measures[0].paddingLeft or 0.0)


def _merged_notes(flat: music21.stream.Stream, shift: float) -> list[list[int]]:
    """[start, length, pitch, velocity] per sounding note, tied notes merged into one.

    Done by hand: music21's ``stripTies`` deep-copies the stream and costs ~10x more.
    """
    import music21

    notes: list[list[int]] = []
    open_ties: dict[int, list[int]] = {}  # MIDI pitch → the note a tie will extend
    for element in flat.notes:
        duration = element.duration
        if duration.isGrace or duration.quarterLength <= 0:
            continue
        if isinstance(element, music21.note.Unpitched | music21.percussion.PercussionChord):
            continue
        start = _ticks(element.offset + shift)
        length = max(1, _ticks(duration.quarterLength))
        velocity = int(element.volume.velocity or DEFAULT_VELOCITY)
        if isinstance(element, music21.chord.Chord):
            members = [(n.pitch.midi, n.tie or element.tie) for n in element.notes]
        else:
            members = [(element.pitch.midi, element.tie)]
        for midi, tie in members:
            if not 0 <= midi <= 127:
                continue
            tie_type = tie.type if tie is not None else None
            held = open_ties.get(midi)
            if tie_type in ("stop", "continue") and held and held[0] + held[1] == start:
                held[1] += length
                if tie_type == "stop":
                    del open_ties[midi]
                continue
            note = [start, length, midi, velocity]
            notes.append(note)
            if tie_type in ("start", "continue"):
                open_ties[midi] = note
            else:
                open_ties.pop(midi, None)
    return notes


def stream_to_score(
    stream: music21.stream.Stream,
    program_for: ProgramChooser | None = None,
    default_qpm: float = DEFAULT_QPM,
) -> symusic.Score:
    """Copy the notes, meters, keys and tempos of a music21 score into a symusic score.

    Ties are merged, grace notes dropped, chords split into notes, and a pickup bar
    is padded with a leading rest so that bar lines fall where the meter says.
    """
    import music21
    import symusic

    program_for = program_for or _instrument_program
    parts = list(stream.parts) if hasattr(stream, "parts") and stream.parts else [stream]
    shift = _pickup_shift(parts[0])
    score = symusic.Score(TICKS_PER_QUARTER)

    for index, part in enumerate(parts):
        name = _part_name(part)
        track = symusic.Track(name, program_for(index, len(parts), name), False)
        for start, length, pitch, velocity in _merged_notes(part.flatten(), shift):
            track.notes.append(symusic.Note(start, length, pitch, velocity))
        track.notes.sort()
        score.tracks.append(track)

    reference = parts[0].flatten()
    for ts in reference.getElementsByClass(music21.meter.TimeSignature):
        at = 0 if ts.offset == 0 else _ticks(ts.offset + shift)
        score.time_signatures.append(symusic.TimeSignature(at, ts.numerator, ts.denominator))
    for ks in reference.getElementsByClass(music21.key.KeySignature):
        at = 0 if ks.offset == 0 else _ticks(ks.offset + shift)
        minor = 1 if getattr(ks, "mode", "major") == "minor" else 0
        score.key_signatures.append(symusic.KeySignature(at, int(ks.sharps), minor))
    marks = [
        (mm.offset, mm.getQuarterBPM())
        for mm in stream.flatten().getElementsByClass(music21.tempo.MetronomeMark)
        if mm.getQuarterBPM()
    ]
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0.0, default_qpm))
    for offset, qpm in dict(marks).items():  # one tempo per offset, the last one wins
        at = 0 if offset == 0 else _ticks(offset + shift)
        score.tempos.append(symusic.Tempo(at, float(qpm)))
    score.sort()
    return score
