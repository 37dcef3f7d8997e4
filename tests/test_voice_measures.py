"""Voice measures (``composer.evaluate.voice_measures``) on tiny scores worked out by hand."""

from __future__ import annotations

import json

import pytest
import symusic

from composer.evaluate.voice_measures import (
    VoiceReport,
    is_monophonic,
    largest_chord,
    line_motion,
    parallel_perfects,
    voice_count,
    voice_report,
)
from composer.music.voices import out_of_range_share, voice_ranges, voice_roles

TPQ = 480
Q = TPQ  # a quarter note


def track(name: str, program: int, notes: list[tuple[int, int, int]], drum: bool = False) -> symusic.Track:
    """A track from (time, duration, pitch) triples."""
    out = symusic.Track(name, program, drum)
    for time, duration, pitch in notes:
        out.notes.append(symusic.Note(time, duration, pitch, 80))
    return out


def score(*tracks: symusic.Track) -> symusic.Score:
    out = symusic.Score(TPQ)
    for t in tracks:
        out.tracks.append(t)
    return out


def line(name: str, program: int, pitches: list[int]) -> symusic.Track:
    """One quarter note per pitch, back to back."""
    return track(name, program, [(i * Q, Q, p) for i, p in enumerate(pitches)])


def chorale() -> symusic.Score:
    """C - F - G - F in four voices; tenor and bass move D4/G3 -> C4/F3, a parallel fifth.

    Motions (both voices change pitch) per pair, chord 1->2, 2->3, 3->4: the soprano holds
    C5 over 1->2, so S-A, S-T, S-B have 2 each; A-T, A-B, T-B have 3 each: 15 in all.
    """
    return score(
        line("Soprano", 52, [72, 72, 71, 72]),
        line("Alto", 52, [67, 69, 67, 69]),
        line("Tenor", 52, [64, 65, 62, 60]),
        line("Bass", 52, [48, 53, 55, 53]),
    )


def trio() -> symusic.Score:
    """Violin with a triple stop, cello, and a flute whose two notes overlap by 120 ticks.

    At the two onsets (0, 480) the lines read violin 79->81 (top of the chord), cello
    48->50, flute 84->86 (the new 86 is above the still-held 84): violin-cello a parallel
    fifth (31 -> 31 semitones), cello-flute a parallel octave (36 -> 36), violin-flute a
    fourth to a fourth: 2 parallels in 3 motions.
    """
    return score(
        track("Violin", 40, [(0, Q, 67), (0, Q, 74), (0, Q, 79), (Q, Q, 81)]),
        track("Violoncello", 42, [(0, Q, 48), (Q, Q, 50)]),
        track("Flute", 73, [(0, Q + 120, 84), (Q, Q, 86)]),
    )


def test_voice_count_skips_drums_and_empty_tracks() -> None:
    s = chorale()
    s.tracks.append(track("Drums", 0, [(0, Q, 36)], drum=True))
    s.tracks.append(track("Viola", 41, []))
    assert voice_count(s) == 4
    assert voice_count(score()) == 0


def test_parallel_fifth_in_chorale() -> None:
    assert parallel_perfects(chorale()) == (1, 15)


def test_contrary_and_oblique_motion_have_no_parallels() -> None:
    # Octave to octave but contrary (C5/C4 -> E5/E3), then octave to fifth, contrary again.
    contrary = score(line("Soprano", 52, [72, 76, 74]), line("Bass", 52, [60, 52, 55]))
    assert parallel_perfects(contrary) == (0, 2)
    # The bass holds a whole note under a rising fifth-to-fifth soprano: oblique, no motion.
    oblique = score(line("Soprano", 52, [67, 69, 71]), track("Bass", 52, [(0, 3 * Q, 48)]))
    assert parallel_perfects(oblique) == (0, 0)


def test_parallel_octaves_and_unisons_count() -> None:
    octaves = score(line("Violin I", 40, [72, 74, 76]), line("Violin II", 40, [60, 62, 64]))
    assert parallel_perfects(octaves) == (2, 2)
    unisons = score(line("Soprano", 52, [67, 65]), line("Alto", 52, [67, 65]))
    assert parallel_perfects(unisons) == (1, 1)
    # One voice alone has no pair to move with.
    assert parallel_perfects(score(line("Soprano", 52, [60, 62]))) == (0, 0)


def test_chord_track_reads_its_top_note() -> None:
    # Double stops whose top moves G4 -> A4 over a cello C3 -> D3: a parallel fifth by the top line.
    s = score(
        track("Violin", 40, [(0, Q, 60), (0, Q, 67), (Q, Q, 62), (Q, Q, 69)]),
        line("Violoncello", 42, [48, 50]),
    )
    assert parallel_perfects(s) == (1, 1)


def test_is_monophonic() -> None:
    back_to_back = track("Soprano", 52, [(0, Q, 60), (Q, Q, 62)])
    assert is_monophonic(back_to_back, TPQ)
    legato = track("Soprano", 52, [(0, Q + 29, 60), (Q, Q, 62)])  # 29 ticks < 480 // 16 = 30
    assert is_monophonic(legato, TPQ)
    overlapping = track("Soprano", 52, [(0, Q + 30, 60), (Q, Q, 62)])
    assert not is_monophonic(overlapping, TPQ)
    drone = track("Soprano", 52, [(0, 4 * Q, 48), (Q, Q, 60), (2 * Q, Q, 62)])
    assert not is_monophonic(drone, TPQ)
    chord = track("Alto", 52, [(0, Q, 60), (0, Q, 64)])
    assert not is_monophonic(chord, TPQ)
    assert is_monophonic(track("Alto", 52, []), TPQ)


def test_largest_chord() -> None:
    triple_stop = track("Violin", 40, [(0, Q, 55), (0, Q, 62), (0, Q, 71), (Q, Q, 60), (Q, Q, 67)])
    assert largest_chord(triple_stop) == 3
    # Notes that end where the next ones start never sound together.
    assert largest_chord(line("Violin", 40, [60, 62, 64])) == 1
    assert largest_chord(track("Violin", 40, [(0, 2 * Q, 60), (Q, Q, 64), (Q, Q, 67)])) == 3
    assert largest_chord(track("Violin", 40, [])) == 0


def test_voice_ranges_percentiles() -> None:
    # Soprano 60..80 across two pieces (21 notes): 5th percentile 61, 95th 79 (linear).
    first = score(line("Soprano", 52, list(range(60, 70))), line("Bass", 52, [48]))
    second = score(line("Soprano", 52, list(range(70, 81))), track("Drums", 0, [(0, Q, 36)], drum=True))
    assert voice_ranges([first, second]) == {"52:0": (61, 79), "52:1": (48, 48)}  # voice roles
    assert voice_ranges([]) == {}


def test_singers_take_roles_by_register_as_generated_voices_are_named() -> None:
    # Monteverdi's order: Canto, then Quinto (a second soprano, a little higher), Alto,
    # Tenor, Basso; a generated piece lists the same voices highest first
    corpus_order = score(line("Canto", 52, [70, 71]), line("Quinto", 52, [72, 74]),
                         line("Alto", 52, [65, 64]), line("Tenore", 52, [60, 59]),
                         line("Basso", 52, [50, 48]))
    generated = score(line("Soprano", 52, [73, 72]), line("Alto", 52, [69, 70]),
                      line("Tenor", 52, [64, 65]), line("Quintus", 52, [58, 60]),
                      line("Bass", 52, [47, 49]))
    assert voice_roles(corpus_order) == ["52:1", "52:0", "52:2", "52:3", "52:4"]
    assert voice_roles(generated) == ["52:0", "52:1", "52:2", "52:3", "52:4"]
    # a horn on the choir's program, doubling the soprano, ranks after the singers;
    # strings keep score order
    with_horn = score(line("Horn 1", 52, [74, 76]), line("Soprano", 52, [72, 74]),
                      line("Bass", 52, [48, 50]), line("Violin 2", 40, [79]),
                      line("Violin 1", 40, [67]))
    assert voice_roles(with_horn) == ["52:2", "52:0", "52:1", "40:0", "40:1"]


def test_out_of_range_share() -> None:
    ranges = {"52:0": (60, 79), "52:1": (40, 60)}
    s = score(
        line("Soprano", 52, [57, 58, 81, 82]),  # 57 and 82 lie outside [58, 81]
        line("Bass", 52, [50]),
        line("Piano", 0, [10]),  # not a voice in the table: not counted
    )
    assert out_of_range_share(s, ranges) == pytest.approx(2 / 5)
    assert out_of_range_share(s, ranges, margin=0) == pytest.approx(4 / 5)
    assert out_of_range_share(score(line("Piano", 0, [10])), ranges) == 0.0


def test_voice_report_on_two_scores() -> None:
    ranges = {"52:0": (60, 79), "52:1": (55, 74), "52:2": (48, 67), "52:3": (40, 62), "40:0": (55, 76)}
    report = voice_report([chorale(), trio()], ranges, expected_voices=4)
    assert report == VoiceReport(
        pieces=2,
        voice_count_share=0.5,  # 4 voices, then 3
        mean_voices=3.5,
        monophonic_share=0.8,  # the four singers, not the overlapping flute
        parallels_per_100=pytest.approx(100 * 3 / 18),  # (1 + 2) parallels in (15 + 3) motions
        largest_string_chord=3,
        out_of_range=0.25,  # chorale 0; violin 79 and 81 above 76 + 2: 2 of 4 notes
        clashes_per_100=0.0,  # voices struck together, never a semitone apart
        semitone_steps=pytest.approx(3 / 15),  # the chorale's 3 of 12 steps; the trio's three are tones
        mean_interval=pytest.approx(29 / 15),
    )
    as_dict = report.as_dict()
    assert as_dict["parallels_per_100"] == 16.6667
    assert as_dict["largest_string_chord"] == 3
    assert json.loads(json.dumps(as_dict)) == as_dict

    # Most common voice count when none is expected: 4, 4, 3.
    most_common = voice_report([chorale(), chorale(), trio()], ranges, None)
    assert most_common.voice_count_share == pytest.approx(2 / 3)


def test_voice_report_without_pieces() -> None:
    report = voice_report([], {}, 4)
    assert report.as_dict() == {
        "pieces": 0, "voice_count_share": 0.0, "mean_voices": 0.0, "monophonic_share": None,
        "parallels_per_100": None, "largest_string_chord": 0, "out_of_range": 0.0, "usual_count_share": None,
        "clashes_per_100": None, "semitone_steps": None, "mean_interval": None,
    }


def test_line_motion_reads_each_voice_as_a_line() -> None:
    # steps: soprano 0 -1 +1, alto +2 -2 +2, tenor +1 -3 -2, bass +5 +2 -2
    semitones, mean_interval = line_motion([chorale()])
    assert semitones == pytest.approx(3 / 12)
    assert mean_interval == pytest.approx(23 / 12)
    # the violin's triple stop counts once, by its top note: 79 -> 81, a tone
    assert line_motion([score(track("Violin", 40, [(0, Q, 67), (0, Q, 78), (Q, Q, 80)]))]) == (0.0, 2.0)
    assert line_motion([]) == (None, None)
    assert line_motion([score(line("Soprano", 52, [60]))]) == (None, None)
