from __future__ import annotations

import math

import pytest
import symusic

from composer.generate.critic import CriticWeights, Critique, best_candidate, chord_beats, critique

TPQ = 480
BAR = 4 * TPQ  # one 4/4 bar
C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def _score(*tracks: tuple[str, int, list[tuple[int, int, int]]]) -> symusic.Score:
    """A 4/4 score of (name, program, [(time, duration, pitch), ...]) tracks."""
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for name, program, notes in tracks:
        track = symusic.Track(name, program, False)
        for time, duration, pitch in notes:
            track.notes.append(symusic.Note(time, duration, pitch, 80))
        score.tracks.append(track)
    return score


def _scale() -> symusic.Score:
    return _score(("Soprano", 52, [(i * TPQ, TPQ, p) for i, p in enumerate(C_MAJOR)]))


def _made(total: float) -> Critique:
    return Critique(1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, total)


def test_key_agreement() -> None:
    assert critique(_scale(), (0, 0)).key_agreement == pytest.approx(1.0)
    # F# major keeps only F (as E#) and B of the seven C-major notes, each sounding equally long
    assert critique(_scale(), (0, 6)).key_agreement == pytest.approx(2 / 7)
    assert critique(_scale(), None).key_agreement == 1.0
    # A minor includes the raised 6th and 7th (F#, G#): all C-major notes are on it
    assert critique(_scale(), (1, 9)).key_agreement == pytest.approx(1.0)


def test_key_agreement_weighs_sounding_time() -> None:
    # C for three beats, C# for one: 3/4 of the time is on C major's scale
    score = _score(("Violin", 40, [(0, 3 * TPQ, 60), (3 * TPQ, TPQ, 61)]))
    assert critique(score, (0, 0)).key_agreement == pytest.approx(0.75)


def test_repetition_counts_bars_beyond_two_in_a_row() -> None:
    bar = [(0, TPQ, 60), (TPQ, TPQ, 64), (2 * TPQ, 2 * TPQ, 67)]
    same = _score(("Soprano", 52, [(b * BAR + t, d, p) for b in range(4) for t, d, p in bar]))
    assert critique(same, (0, 0)).repetition == pytest.approx(0.5)  # bars 3 and 4 of 4
    varied = _score(("Soprano", 52, [(b * BAR + t, d, p + b) for b in range(4) for t, d, p in bar]))
    assert critique(varied, (0, 0)).repetition == 0.0
    # a bar repeated once, then something else, then the pair again: never three in a row
    pitches = [60, 60, 62, 60, 60]
    pairs = _score(("Soprano", 52, [(b * BAR, BAR, p) for b, p in enumerate(pitches)]))
    assert critique(pairs, (0, 0)).repetition == 0.0
    # one bar has nothing to repeat
    assert critique(_score(("Soprano", 52, [(0, BAR, 60)])), (0, 0)).repetition == 0.0


def test_repetition_needs_same_pitches_and_onsets() -> None:
    # same pitches, but the third bar moves its note by a beat: the run breaks there
    notes = [(0, TPQ, 60), (BAR, TPQ, 60), (2 * BAR + TPQ, TPQ, 60), (3 * BAR + TPQ, TPQ, 60)]
    assert critique(_score(("Soprano", 52, notes)), (0, 0)).repetition == 0.0


def test_empty_bars() -> None:
    # bars 1 and 3 play, bar 2 is silent, bar 4 is covered by a note held from bar 3
    notes = [(0, TPQ, 60), (2 * BAR, 2 * BAR, 62)]
    result = critique(_score(("Soprano", 52, notes)), (0, 0))
    assert result.empty_bars == pytest.approx(1 / 4)
    full = critique(_score(("Soprano", 52, [(b * BAR, TPQ, 60 + b) for b in range(4)])), (0, 0))
    assert full.empty_bars == 0.0


def test_bad_chords_follow_the_voice() -> None:
    # soprano: two onsets, the second a two-note chord a singer cannot sing
    soprano = _score(("Soprano", 52, [(0, TPQ, 60), (TPQ, TPQ, 64), (TPQ, TPQ, 67)]))
    assert critique(soprano, (0, 0)).bad_chords == pytest.approx(1 / 2)
    double_stop = _score(("Violin", 40, [(0, TPQ, 55), (0, TPQ, 62), (TPQ, TPQ, 64)]))
    assert critique(double_stop, (0, 0)).bad_chords == 0.0
    triple_stop = _score(("Violin", 40, [(0, TPQ, 55), (0, TPQ, 62), (0, TPQ, 71), (TPQ, TPQ, 64)]))
    assert critique(triple_stop, (0, 0)).bad_chords == pytest.approx(1 / 2)
    piano = _score(("Piano", 0, [(0, TPQ, p) for p in (48, 55, 60, 64, 67)]))
    assert critique(piano, (0, 0)).bad_chords == 0.0


def test_out_of_range() -> None:
    score = _score(("Soprano", 52, [(0, TPQ, 58), (TPQ, TPQ, 57), (2 * TPQ, TPQ, 81), (3 * TPQ, TPQ, 82)]),
                   ("Bass", 52, [(0, BAR, 40)]))
    ranges = {"52:0": (60, 79), "52:1": (40, 62)}  # voice roles: program 52, voices 0 and 1
    # 58 and 81 are within the 2-semitone margin; 57 and 82 are out: 2 of 5 notes
    assert critique(score, (0, 0), ranges).out_of_range == pytest.approx(2 / 5)
    assert critique(score, (0, 0), {}).out_of_range == 0.0
    assert critique(score, (0, 0)).out_of_range == 0.0
    assert critique(score, (0, 0), {"52:1": (50, 62)}).out_of_range == 1.0  # only voices with a range count


def test_total_follows_the_formula() -> None:
    # a soprano C-major scale with one chord, one empty bar and one note out of range
    notes = [(i * TPQ, TPQ, p) for i, p in enumerate(C_MAJOR)] + [(0, TPQ, 64), (3 * BAR, TPQ, 61)]
    score = _score(("Soprano", 52, notes))
    weights = CriticWeights(style=0.5, key=3.0, sanity=2.0)
    result = critique(score, (0, 0), {"52:0": (60, 70)}, style_margin=1.25, weights=weights)
    assert result.key_agreement == pytest.approx(8 / 9)  # C# sounds one of nine beats
    assert result.empty_bars == pytest.approx(1 / 4)
    assert result.bad_chords == pytest.approx(1 / 8)  # one chord among 8 onsets
    assert result.out_of_range == pytest.approx(0.0)  # 71 is within 70 + 2
    assert result.repetition == 0.0
    assert result.sanity_penalty == pytest.approx(1 / 4 + 1 / 8)
    assert result.style_margin == 1.25
    assert result.total == pytest.approx(0.5 * 1.25 + 3.0 * 8 / 9 - 2.0 * (1 / 4 + 1 / 8))
    plain = critique(score, (0, 0))
    assert plain.style_margin == 0.0
    assert plain.total == pytest.approx(2.0 * 8 / 9 - (1 / 4 + 1 / 8))


def test_best_candidate() -> None:
    assert best_candidate([_made(0.1), _made(2.0), _made(-1.0)]) == 1
    assert best_candidate([_made(0.5), _made(3.0), _made(3.0), _made(1.0)]) == 1
    assert best_candidate([_made(math.nan), _made(-5.0)]) == 1
    assert best_candidate([_made(7.0)]) == 0
    with pytest.raises(ValueError):
        best_candidate([])


def test_best_candidate_prefers_the_clean_piece() -> None:
    clean = critique(_scale(), (0, 0))
    clashing = _score(("Soprano", 52, [(i * TPQ, TPQ, p + 1) for i, p in enumerate(C_MAJOR)]))
    assert best_candidate([critique(clashing, (0, 0)), clean]) == 1


def test_missing_voices_are_a_sanity_penalty() -> None:
    soprano = ("Soprano", 52, [(i * TPQ, TPQ, p) for i, p in enumerate(C_MAJOR)])
    bass = ("Bass", 52, [(0, 7 * TPQ, 48)])
    two = _score(soprano, bass)
    assert critique(two, (0, 0), voices=4).missing_voices == pytest.approx(0.5)
    assert critique(two, (0, 0), voices=2).missing_voices == 0.0
    assert critique(two, (0, 0)).missing_voices == 0.0  # no usual count given: not checked
    full = critique(two, (0, 0), voices=2)
    short = critique(two, (0, 0), voices=4)
    assert full.total - short.total == pytest.approx(0.5)  # sanity weight 1 × half the voices missing


def test_whole_chords_are_triads_or_sevenths_of_three_notes_or_more() -> None:
    # beats: C-E-G (a triad), C-D-E (a cluster), G-B-D-F (a dominant seventh), C-G (two notes)
    chords = [(60, 64, 67), (60, 62, 64), (55, 59, 62, 65), (60, 67)]
    voices: dict[int, list[tuple[int, int, int]]] = {}
    for beat, chord in enumerate(chords):
        for voice, pitch in enumerate(chord):
            voices.setdefault(voice, []).append((beat * TPQ, TPQ, pitch))
    score = _score(*((f"v{v}", 52, notes) for v, notes in voices.items()))
    assert chord_beats(score) == (2, 4)
    assert chord_beats(score, before=2 * TPQ) == (1, 2)  # the first two beats
    assert chord_beats(score, before=2 * TPQ + 1) == (2, 3)  # and the seventh chord on beat 3
    assert chord_beats(_score()) == (0, 0)
