"""The chord model that plans a harmonization: chords read from beats, counts that survive
JSON, a posterior that hears the melody still to come, beats found in the tokens."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from composer.generate.melody_lock import MelodyLock, beat_positions
from composer.music.harmony import (
    CHORD_SHAPES,
    ChordCounts,
    ChordModel,
    chord_classes,
    chord_state,
    count_chords,
    plan_chords,
)
from composer.music.voices import soprano_line

TPQ = 480
C, D, E, F, G, A, B = 72, 74, 76, 77, 79, 81, 83  # the soprano, an octave above middle C
TONIC, SUBDOMINANT, DOMINANT = (48, 55, 64), (53, 57, 60), (43, 50, 59)  # bass, tenor, alto


def _state(root: int, shape: tuple[int, ...]) -> int:
    return root * len(CHORD_SHAPES) + CHORD_SHAPES.index(shape)


def _chorale(beats: list[tuple[int, tuple[int, int, int]]], transpose: int = 0) -> symusic.Score:
    """Four quarter-note voices in 4/4: the soprano's pitch and the three lower voices' chord on each beat."""
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    tracks = [symusic.Track(name, 52, False) for name in ("Soprano", "Alto", "Tenor", "Bass")]
    for beat, (top, (bass, tenor, alto)) in enumerate(beats):
        for track, pitch in zip(tracks, (top, alto, tenor, bass), strict=True):
            track.notes.append(symusic.Note(beat * TPQ, TPQ, pitch + transpose, 80))
    score.tracks.extend(tracks)
    return score


def test_a_beat_is_read_as_the_chord_its_notes_fit_best() -> None:
    c_major = frozenset({0, 4, 7})
    assert chord_state(c_major, 48, tonic=0) == _state(0, (0, 4, 7))
    assert chord_state(c_major, 52, tonic=7) == _state(5, (0, 4, 7))  # IV of G, in first inversion
    assert chord_state(frozenset({9, 0, 4}), 57, tonic=0) == _state(9, (0, 3, 7))  # vi
    assert chord_state(frozenset({7, 11, 2, 5}), 43, tonic=0) == _state(7, (0, 4, 7, 10))  # V7
    # C and E only: a C major triad, whose root is the bass, rather than A minor or E minor
    assert chord_state(frozenset({0, 4}), 48, tonic=0) == _state(0, (0, 4, 7))
    assert chord_classes(_state(7, (0, 4, 7)), tonic=2) == frozenset({9, 1, 4})  # V of D is A major


SUPERTONIC = (50, 53, 57)
# what the counts learn: the melody's D after C goes over V when C follows, over ii when F does
CADENCES = [(C, TONIC), (D, DOMINANT), (C, TONIC), (E, TONIC)] * 8 + \
           [(C, TONIC), (D, SUPERTONIC), (F, SUBDOMINANT), (E, TONIC)] * 8 + [(C, TONIC)]


def test_chord_counts_survive_json_and_refuse_another_format() -> None:
    counts = count_chords([(s, soprano_line(s)) for s in (_chorale(CADENCES), _chorale(CADENCES, 5))])
    assert counts.beats == 2 * len(CADENCES)
    again = ChordCounts.from_json(counts.to_json())
    for name in ("start", "transitions"):
        assert np.array_equal(getattr(again, name), getattr(counts, name))
    assert again.contexts.keys() == counts.contexts.keys()
    assert all(np.array_equal(again.contexts[k], counts.contexts[k]) for k in counts.contexts)
    with pytest.raises(ValueError):
        ChordCounts.from_json({**counts.to_json(), "format": 99})
    with pytest.raises(ValueError):
        ChordCounts.from_json({**counts.to_json(), "shapes": [[0, 4, 7]]})


def test_the_plan_hears_the_melody_still_to_come_in_any_key() -> None:
    pieces = (_chorale(CADENCES), _chorale(CADENCES, 2))
    model = ChordModel(count_chords([(s, soprano_line(s)) for s in pieces]))
    for transpose in (0, 7):  # counted relative to the tonic: G major is planned like C major
        key = (0, transpose % 12)
        # the melodies differ only after the D; the chords under them are not read
        before_tonic = plan_chords(model, soprano_line(_chorale([(C, TONIC), (D, TONIC), (C, TONIC)],
                                                                transpose)), key)
        before_fourth = plan_chords(model, soprano_line(_chorale([(C, TONIC), (D, TONIC), (F, TONIC)],
                                                                 transpose)), key)
        assert len(before_tonic) == 3
        dominant = frozenset((p + transpose) % 12 for p in (7, 11, 2))
        supertonic = frozenset((p + transpose) % 12 for p in (2, 5, 9))
        assert before_tonic[1] == (dominant, (7 + transpose) % 12)  # the same D, a different chord
        assert before_fourth[1] == (supertonic, (2 + transpose) % 12)
        assert before_tonic[0][0] == before_tonic[2][0] == frozenset((p + transpose) % 12 for p in (0, 4, 7))


@pytest.mark.parametrize(("meter", "beats"), [
    ("4/4", [(1, 0), (1, 24), (1, 48), (1, 72), (2, 0), (2, 24), (2, 48), (2, 72)]),
    ("3/2", [(1, 0), (1, 12), (1, 24), (1, 36), (1, 48), (1, 60), (2, 0), (2, 12), (2, 24), (2, 36), (2, 48),
             (2, 60)]),
    ("6/8", [(1, 0), (1, 48), (1, 96), (2, 0), (2, 48), (2, 96)]),
    # bar 2 opens half a quarter after a beat: its beats fall half a quarter in
    ("5/8", [(1, 0), (1, 48), (1, 96), (2, 24), (2, 72)]),
])
def test_beat_positions_find_each_quarter_in_the_bars(meter: str, beats: list[tuple[int, int]]) -> None:
    tokens = ["Style_bach", "Bar_None", f"TimeSig_{meter}", "Position_0", "Bar_None", f"TimeSig_{meter}"]
    assert beat_positions(tokens, 24) == beats


def test_the_lock_strikes_the_other_voices_from_the_planned_chord() -> None:
    vocab = ["Bar_None", "TimeSig_4/4", "Position_0", "Position_24", "Program_0", "Program_1",
             "Pitch_60", "Pitch_62", "Pitch_64", "Velocity_80", "Duration_1.0.24"]
    entries = [(i,) for i in range(len(vocab))]
    plan = {(1, 0): frozenset({0, 4, 7})}
    lock = MelodyLock.build(vocab, entries, program=0, notes=[], chords=plan)
    state = lock.start([0, 1, 2, 5])  # bar 1, its first beat, the second voice about to sing
    allowed = lock.restrict(np.ones(len(vocab), dtype=bool), state)
    assert allowed[vocab.index("Pitch_60")] and allowed[vocab.index("Pitch_64")]
    assert not allowed[vocab.index("Pitch_62")]  # D is not in the C major chord planned there
    off_beat = lock.start([0, 1, 3, 5])  # between the planned beats the voice is free
    assert lock.restrict(np.ones(len(vocab), dtype=bool), off_beat)[vocab.index("Pitch_62")]


def test_the_lock_keeps_the_other_voices_in_their_ranges() -> None:
    vocab = ["Bar_None", "TimeSig_4/4", "Position_0", "Position_24", "Program_0", "Program_1",
             "Pitch_48", "Pitch_60", "Pitch_64", "Pitch_76", "Velocity_80", "Duration_1.0.24"]
    entries = [(i,) for i in range(len(vocab))]
    lock = MelodyLock.build(vocab, entries, program=0, notes=[], ranges={0: (70, 80), 1: (55, 66)})
    allowed = lock.restrict(np.ones(len(vocab), dtype=bool), lock.start([0, 1, 3, 5]))
    assert [p for p in ("Pitch_48", "Pitch_60", "Pitch_64", "Pitch_76") if allowed[vocab.index(p)]] == \
        ["Pitch_60", "Pitch_64"]  # the melody's own range is the melody's business, not the lock's
    assert lock.ranges == {1: (55, 66)}
