"""Notation plan → music21 score: measures, voices, clefs, keys, spelling, ties, tuplets.

Measures are built directly from the plan's pieces (each already a single notatable
symbol), so music21's ``makeNotation`` is never asked to guess; only beams and
accidentals are left to music21.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from composer.score.durations import Piece, type_and_dots
from composer.score.layout import lay_out_staff
from composer.score.meter import is_compound
from composer.score.plan import NotationPlan, PartPlan
from composer.score.staves import Staff

if TYPE_CHECKING:
    import music21

STEP_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")
NEUTRAL_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")
STEMS = ("up", "down", "up", "down")


@lru_cache(maxsize=64)
def spelling(sharps: int, mode: str) -> tuple[str, ...]:
    """Name (music21 spelling, e.g. "F#", "B-") for each pitch class in a key.

    Scale degrees take the key's names; minor keys add the raised sixth and seventh;
    other chromatic notes take sharps in sharp keys and flats in flat keys.
    """
    import music21

    ks = music21.key.KeySignature(sharps)
    key = ks.asKey(mode)
    names: dict[int, str] = {}
    for p in key.getScale(mode).getPitches("C4", "B4"):
        names.setdefault(p.pitchClass, p.name)
    if mode == "minor":
        for degree in (6, 7):
            raised = key.pitchFromDegree(degree).transpose("A1")
            names.setdefault(raised.pitchClass, raised.name)
    fallback = SHARP_NAMES if sharps > 0 else FLAT_NAMES if sharps < 0 else NEUTRAL_NAMES
    return tuple(names.get(pc, fallback[pc]) for pc in range(12))


def _pitch(midi: int, names: tuple[str, ...]) -> music21.pitch.Pitch:
    import music21

    name = names[midi % 12]
    alter = name.count("#") - name.count("-")
    octave = (midi - alter - STEP_PC[name[0]]) // 12 - 1
    return music21.pitch.Pitch(f"{name}{octave}")


def _duration(piece: Piece) -> music21.duration.Duration:
    import music21

    kind, dots = type_and_dots(piece.written)
    duration = music21.duration.Duration(type=kind, dots=dots)
    if piece.tuplet:
        tuplet = music21.duration.Tuplet(3, 2, "eighth")
        if piece.tuplet in ("start", "stop"):
            tuplet.type = piece.tuplet
        duration.appendTuplet(tuplet)
    return duration


def _element(piece: Piece, names: tuple[str, ...], stem: str | None) -> music21.base.Music21Object:
    import music21

    if not piece.pitches:
        rest = music21.note.Rest()
        if piece.full_bar:
            rest.duration = music21.duration.Duration(piece.length)
            rest.fullMeasure = True
        else:
            rest.duration = _duration(piece)
        return rest
    if len(piece.pitches) == 1:
        element: music21.note.NotRest = music21.note.Note(_pitch(piece.pitches[0], names))
    else:
        element = music21.chord.Chord([_pitch(p, names) for p in piece.pitches])
    element.duration = _duration(piece)
    if piece.tie:
        element.tie = music21.tie.Tie(piece.tie)
    if stem:
        element.stemDirection = stem
    for kind in piece.beams:
        kind, _, direction = kind.partition("-")
        element.beams.append(kind, direction or None)
    return element


def _readable_rests(offset: Fraction, element: music21.base.Music21Object,
                    bar_length: Fraction) -> list[tuple[Fraction, music21.base.Music21Object]]:
    """A whole rest that fills only part of a longer bar (4/2, 3/2) as half rests.

    Readers (music21 among them) take a ``<type>whole</type>`` rest for a whole-bar rest
    whatever its duration, which would overfill the bar.
    """
    import music21

    length = Fraction(element.quarterLength).limit_denominator(64)
    if (not isinstance(element, music21.note.Rest) or element.fullMeasure is True
            or element.duration.type != "whole" or length >= bar_length or length % 2):
        return [(offset, element)]
    return [(offset + 2 * i, music21.note.Rest(type="half")) for i in range(int(length // 2))]


def _clef(name: str) -> music21.clef.Clef:
    import music21

    return {
        "treble": music21.clef.TrebleClef,
        "treble8vb": music21.clef.Treble8vbClef,
        "alto": music21.clef.AltoClef,
        "tenor": music21.clef.TenorClef,
        "bass": music21.clef.BassClef,
        "bass8vb": music21.clef.Bass8vbClef,
    }[name]()


def _instrument(part: PartPlan) -> music21.instrument.Instrument:
    import music21

    inst = None
    lowered = part.name.lower()
    if part.family == "voice":
        for cls in (music21.instrument.Soprano, music21.instrument.Alto,
                    music21.instrument.Tenor, music21.instrument.Bass):
            if lowered.startswith(cls.__name__.lower()):
                inst = cls()
    if inst is None:
        try:
            inst = music21.instrument.instrumentFromMidiProgram(part.program)
        except Exception:  # music21 raises for programs it has no class for
            inst = music21.instrument.Instrument()
    inst.midiProgram = part.program
    inst.transposition = None  # a score in concert pitch: MIDI pitches are what sounds
    name = part.name or inst.instrumentName or "Part"
    inst.partName = name
    inst.instrumentName = name
    inst.partAbbreviation = part.abbreviation or None
    inst.instrumentAbbreviation = part.abbreviation or None
    return inst


def _tempo_mark(qpm: int, meter: tuple[int, int]) -> music21.tempo.MetronomeMark:
    import music21

    if is_compound(*meter) and meter[1] == 8 and qpm % 3 == 0:
        return music21.tempo.MetronomeMark(number=qpm * 2 // 3, referent=music21.note.Note(
            type="quarter", dots=1))
    return music21.tempo.MetronomeMark(number=qpm, referent=music21.note.Note(type="quarter"))


def build_stream(plan: NotationPlan, title: str | None = None,
                 subtitle: str | None = None) -> music21.stream.Score:
    """A music21 score with measures, ready for MusicXML export without makeNotation."""
    import music21

    score = music21.stream.Score()
    score.metadata = music21.metadata.Metadata()
    score.metadata.title = title or ""
    if subtitle:
        score.metadata.movementName = subtitle
    staff_groups = []
    first_staff = True
    for part in plan.parts:
        staves = []
        for s_index, staff in enumerate(part.staves):
            cls = music21.stream.PartStaff if len(part.staves) > 1 else music21.stream.Part
            stream = cls()
            stream.id = f"P{len(score.parts) + 1}"
            stream.insert(0, _instrument(part))
            if s_index == 0:
                stream.partName = part.name or None
                stream.partAbbreviation = part.abbreviation or None
            _fill_staff(stream, plan, part, staff, with_tempo=first_staff)
            first_staff = False
            score.insert(0, stream)
            staves.append(stream)
        if len(staves) > 1:
            group = music21.layout.StaffGroup(staves, name=part.name or None, symbol="brace",
                                              barTogether=True)
            group.abbreviation = part.abbreviation or None
            staff_groups.append(group)
    for group in _family_brackets(plan, score):
        staff_groups.append(group)
    for group in staff_groups:
        score.insert(0, group)
    return score


def _family_brackets(plan: NotationPlan, score: music21.stream.Score) -> list[music21.layout.StaffGroup]:
    """A bracket over each run of two or more single-staff parts of one family (voices, strings)."""
    import music21

    groups = []
    streams = list(score.parts)
    index = 0
    runs: list[list[music21.stream.Stream]] = []
    last_family = None
    for part in plan.parts:
        mine = streams[index:index + len(part.staves)]
        index += len(part.staves)
        single = len(part.staves) == 1 and part.family in ("voice", "strings")
        if single and part.family == last_family:
            runs[-1].extend(mine)
        elif single:
            runs.append(list(mine))
        last_family = part.family if single else None
    for run in runs:
        if len(run) > 1:
            groups.append(music21.layout.StaffGroup(run, symbol="bracket", barTogether=True))
    return groups


def _fill_staff(stream: music21.stream.Stream, plan: NotationPlan, part: PartPlan,
                staff: Staff, *, with_tempo: bool) -> None:
    import music21

    layout = lay_out_staff(staff.voices, plan.bars, part.grid)
    key = (0, "major")
    meter = None
    last = len(plan.bars) - 1
    for b, bar in enumerate(plan.bars):
        pickup = plan.bars[0].shift > 0
        measure = music21.stream.Measure(number=b if pickup else b + 1)
        if bar.shift:
            measure.paddingLeft = float(bar.shift)
            measure.showNumber = music21.stream.enums.ShowNumber.NEVER  # written implicit="yes"
        if b == 0:
            measure.insert(0, _clef(staff.clefs[0]))
        if b + 1 in staff.clefs and b + 1 < len(plan.bars):
            # a clef change is written before the bar line, at the end of the bar before
            measure.insert(bar.length, _clef(staff.clefs[b + 1]))
        if b in plan.keys:
            key = plan.keys[b]
            measure.insert(0, music21.key.KeySignature(key[0]))
        if bar.meter != meter:
            meter = bar.meter
            measure.insert(0, music21.meter.TimeSignature(f"{meter[0]}/{meter[1]}"))
        if with_tempo and b in plan.tempos:
            measure.insert(0, _tempo_mark(plan.tempos[b], bar.meter))
        names = spelling(*key)
        written = layout[b]
        made: list[tuple[Fraction, music21.base.Music21Object]] = []
        if len(written) == 1:
            for piece in written[0][1]:
                for offset, element in _readable_rests(piece.offset, _element(piece, names, None),
                                                       bar.length):
                    measure.insert(offset, element)
                    made.append((offset, element))
        else:
            for k, (v, pieces) in enumerate(written):
                voice = music21.stream.Voice(id=str(v + 1))
                for piece in pieces:
                    for offset, element in _readable_rests(
                            piece.offset, _element(piece, names, STEMS[k % 4]), bar.length):
                        voice.insert(offset, element)
                        made.append((offset, element))
                measure.insert(0, voice)
        if b == last:
            measure.rightBarline = music21.bar.Barline("final")
        _set_accidentals(made, key[0])
        stream.append(measure)


SHARP_ORDER = "FCGDAEB"


def key_alterations(sharps: int) -> dict[str, int]:
    """Step → alteration the key signature implies, e.g. {"F": 1, "C": 1} for D major."""
    if sharps >= 0:
        return {step: 1 for step in SHARP_ORDER[:sharps]}
    return {step: -1 for step in SHARP_ORDER[::-1][:-sharps]}


def _set_accidentals(made: list[tuple[Fraction, music21.base.Music21Object]], sharps: int) -> None:
    """Show an accidental where a note differs from the key signature or from an earlier
    note on the same line or space in the bar; a note tied over from before shows none.

    One pass over the bar's notes in time order (all voices share the staff), instead of
    music21's ``makeAccidentals``, which costs a third of the build time.
    """
    import music21

    implied = key_alterations(sharps)
    state: dict[tuple[str, int], int] = {}
    for _, element in sorted(made, key=lambda pair: pair[0]):
        if not isinstance(element, music21.note.NotRest):
            continue
        tie = element.tie.type if element.tie is not None else None
        for pitch in element.pitches:
            alter = int(pitch.alter)
            line = (pitch.step, pitch.octave)
            if tie in ("stop", "continue"):
                if pitch.accidental is not None:
                    pitch.accidental.displayStatus = False
                continue
            current = state.get(line, implied.get(pitch.step, 0))
            if alter != current:
                if pitch.accidental is None:
                    pitch.accidental = music21.pitch.Accidental("natural")
                pitch.accidental.displayStatus = True
            elif pitch.accidental is not None:
                pitch.accidental.displayStatus = False
            state[line] = alter
