"""The harmonization measures and the triad baseline, on hand-made four-part scores."""

from __future__ import annotations

import pytest
import symusic

from composer.evaluate.harmonization import (
    beat_chords,
    chord_agreement,
    measure_settings,
    melody_kept,
    triad_setting,
    voice_crossings,
)
from composer.evaluate.voice_measures import usual_voice_counts
from composer.music.voices import soprano_line

TPQ = 480


def _score(*parts: tuple[str, list[int]]) -> symusic.Score:
    """A 4/4 score of quarter-note parts, one pitch per beat (0: a rest)."""
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for name, pitches in parts:
        track = symusic.Track(name, 52, False)
        for beat, pitch in enumerate(pitches):
            if pitch:
                track.notes.append(symusic.Note(beat * TPQ, TPQ, pitch, 80))
        score.tracks.append(track)
    return score


CADENCE = _score(("Soprano", [72, 71, 72, 72]), ("Alto", [67, 67, 64, 64]),
                 ("Tenor", [64, 62, 60, 60]), ("Bass", [48, 55, 48, 48]))


def test_beat_chords_and_agreement() -> None:
    chords = beat_chords(CADENCE, 4)
    assert chords[0] == (frozenset({0, 4, 7}), 48) and chords[1] == (frozenset({11, 7, 2}), 55)
    assert chord_agreement(CADENCE, CADENCE) == (1.0, 1.0)
    other = _score(("Soprano", [72, 71, 72, 72]), ("Bass", [45, 55, 48, 45]))  # A minor, G, C, A minor
    overlap, bass = chord_agreement(other, CADENCE)
    assert bass == pytest.approx(0.5)
    assert overlap == pytest.approx((1 / 4 + 2 / 3 + 1 / 2 + 1 / 3) / 4)  # beats 3-4 of CADENCE: C and E


def test_voice_crossings_count_beats_where_a_lower_voice_is_above() -> None:
    assert voice_crossings(CADENCE) == 0.0
    crossed = _score(("Soprano", [72, 72, 72, 72]), ("Alto", [67, 74, 67, 67]), ("Bass", [48, 48, 48, 48]))
    assert voice_crossings(crossed) == pytest.approx(1 / 4)


def test_the_triad_baseline_keeps_the_melody_and_sets_root_position_triads() -> None:
    melody = soprano_line(CADENCE)
    assert [t.name for t in melody.tracks] == ["Soprano"]
    setting = triad_setting(melody, (0, 0))  # C major
    assert melody_kept(setting, melody) and len(setting.tracks) == 4
    chords = beat_chords(setting, 4)
    assert chords[0] == (frozenset({0, 4, 7}), 48)  # C under C: the tonic, root in the bass
    assert chords[1][0] == frozenset({7, 11, 2}) and chords[1][1] % 12 == 7  # B: the dominant
    minor = triad_setting(_score(("Soprano", [68, 69])), (1, 9))  # A minor: G# takes the major dominant
    assert beat_chords(minor, 1)[0][0] == frozenset({4, 8, 11})


def test_measure_settings_against_the_reference() -> None:
    melody = soprano_line(CADENCE)
    same = measure_settings([CADENCE], [melody], [CADENCE], {}, ["bach"])
    assert same.melody_kept == 1.0 and same.chord_overlap == 1.0 and same.same_bass == 1.0
    assert same.judged_bach == 1.0 and same.crossings == 0.0
    changed = CADENCE.copy()
    changed.tracks[0].notes[1].pitch = 74
    assert measure_settings([changed], [melody], [CADENCE], {}).melody_kept == 0.0


def test_usual_voice_counts_keep_every_common_count() -> None:
    four, five = CADENCE, _score(*(("V", [60]) for _ in range(5)))
    two = _score(("V", [60]), ("W", [64]))
    assert usual_voice_counts([four] * 5 + [five] * 4 + [two]) == [2, 4, 5]
    assert usual_voice_counts([four] * 19 + [two]) == [4]  # one piece in 20 is not usual


def test_paired_overlap_counts_the_chorales_a_setting_wins() -> None:
    from composer.evaluate.harmonization import paired_overlap

    other = _score(("Soprano", [72, 71, 72, 72]), ("Bass", [45, 55, 48, 45]))
    paired = paired_overlap([CADENCE, CADENCE, other], [other, other, other], [CADENCE, CADENCE, CADENCE])
    gap = 1 - chord_agreement(other, CADENCE)[0]
    assert paired["chorales"] == 3 and paired["higher"] == 2  # the third is a tie
    assert paired["mean_difference"] == pytest.approx(2 * gap / 3, abs=1e-4)
    low, high = paired["interval_95"]
    assert 0 <= low <= paired["mean_difference"] <= high <= gap + 1e-4
    assert paired_overlap([], [], []) == {}
