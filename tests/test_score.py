"""Sheet music: layout rules, the symusic ↔ music21 round trip, readability checks, outputs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from fractions import Fraction as F
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import pytest
import symusic
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import OutputError
from composer.music.instruments import instrument_for
from composer.score.clefs import clef_plan
from composer.score.durations import Event, metric_split, notatable, split_in_bar
from composer.score.grid import choose_grid, snap
from composer.score.layout import bar_voices, voice_notes
from composer.score.meter import Bar, make_bars, metric_levels
from composer.score.voices import separate_lines

TPQ = 480


def make_score(parts: list[tuple[str, int, list[tuple[float, float, int]]]], *,
               meter: tuple[int, int] = (4, 4), qpm: float = 100.0,
               key: tuple[int, int] | None = None) -> symusic.Score:
    """A score from (name, program, [(start, length, pitch) in quarter notes]) parts."""
    score = symusic.Score(TPQ)
    for name, program, notes in parts:
        track = symusic.Track(name, program, False)
        for start, length, pitch in notes:
            track.notes.append(symusic.Note(round(start * TPQ), round(length * TPQ), pitch, 80))
        score.tracks.append(track)
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    score.tempos.append(symusic.Tempo(0, qpm))
    if key is not None:
        score.key_signatures.append(symusic.KeySignature(0, *key))
    return score


CHORALE = [  # (soprano, alto, tenor, bass) per beat: a D major cadence, 4 bars
    (74, 69, 66, 50), (73, 69, 64, 57), (74, 66, 62, 59), (76, 67, 59, 55),
    (78, 69, 62, 54), (76, 67, 64, 52), (74, 66, 69, 50), (73, 64, 69, 57),
    (71, 62, 66, 59), (73, 64, 67, 57), (74, 66, 69, 50), (76, 67, 71, 55),
    (74, 66, 69, 57), (73, 64, 67, 57), (74, 66, 62, 50), (74, 66, 62, 50),
]


def chorale_parts() -> list[list[tuple[float, float, int]]]:
    voices: list[list[tuple[float, float, int]]] = [[], [], [], []]
    for beat, chord in enumerate(CHORALE[:-1]):
        for v, pitch in enumerate(chord):
            voices[v].append((beat, 2.0 if beat == len(CHORALE) - 2 else 1.0, pitch))
    voices[1][3:5] = [(3, 0.5, 67), (3.5, 0.5, 69), (4, 1, 69)]  # passing eighths in the alto
    return voices


@lru_cache(maxsize=1)
def bach_chorale() -> symusic.Score:
    """A real chorale (music21's corpus) as the corpus stores it: one choir track per voice."""
    import music21

    from composer.io.notation import stream_to_score

    return stream_to_score(music21.corpus.parse("bach/bwv66.6"), lambda i, n, name: 52)


@lru_cache(maxsize=4)
def written_xml(kind: str) -> bytes:
    from composer.score.write import score_to_musicxml

    if kind == "bach":
        return score_to_musicxml(bach_chorale(), title="Christ unser Herr", subtitle="style bach · seed 1")
    if kind == "one_track":
        notes = [n for voice in chorale_parts() for n in voice]
        return score_to_musicxml(make_score([("", 52, notes)], qpm=121.29), title="Chorale")
    raise KeyError(kind)


def reparse(xml: bytes):  # -> music21.stream.Score
    import music21

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return music21.converter.parseData(xml, format="musicxml", forceSource=True)


# ---------------------------------------------------------------- durations and bars


def test_metric_split_follows_engraving_rules() -> None:
    four = Bar(F(0), F(4), 4, 4)
    levels = metric_levels(four)
    assert metric_split(F(0), F(2), levels) == [(0, 2)]  # half on beat 1
    assert metric_split(F(1), F(3), levels) == [(1, 2), (2, 3)]  # half on beat 2: tied quarters
    assert metric_split(F(0), F(3, 2), levels) == [(0, F(3, 2))]  # dotted quarter on the beat
    assert metric_split(F(1, 2), F(2), levels) == [(F(1, 2), 1), (1, 2)]  # syncopation
    assert metric_split(F(0), F(5, 4), levels) == [(0, 1), (1, F(5, 4))]  # quarter ~ 16th
    six_eight = metric_levels(Bar(F(0), F(3), 6, 8))
    assert metric_split(F(1, 2), F(3, 2), six_eight) == [(F(1, 2), F(3, 2))]  # quarter after an eighth
    assert metric_split(F(1), F(2), six_eight) == [(1, F(3, 2)), (F(3, 2), 2)]  # across the beat


@settings(max_examples=200, deadline=None, database=None)
@given(meter=st.sampled_from([(4, 4), (3, 4), (2, 2), (6, 8), (9, 8), (5, 8), (12, 8), (4, 2), (3, 8)]),
       a=st.integers(0, 64), b=st.integers(0, 64))
def test_every_span_becomes_notatable_pieces_that_tile_it(meter: tuple[int, int], a: int, b: int) -> None:
    bar = Bar(F(0), F(4 * meter[0], meter[1]), *meter)
    start, end = sorted((min(F(a, 8), bar.length), min(F(b, 8), bar.length)))
    if start == end:
        return
    pieces = metric_split(start, end, metric_levels(bar))
    assert pieces[0][0] == start and pieces[-1][1] == end
    assert all(p[1] == q[0] for p, q in pairwise(pieces))
    assert all(notatable(e - s) for s, e in pieces), pieces


METERS = [(4, 4), (3, 4), (6, 8), (2, 2), (5, 8)]


@pytest.mark.filterwarnings("ignore:.*notes shortened")
@settings(max_examples=40, deadline=None, database=None)
@given(tpq=st.sampled_from([96, 384, 480, 1000]),
       meters=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(METERS)), min_size=1, max_size=3),
       notes=st.lists(st.tuples(st.integers(0, 60_000), st.integers(1, 5_000), st.integers(30, 100)),
                      min_size=1, max_size=60),
       program=st.sampled_from([0, 40, 42, 52, 73]))
def test_any_midi_is_laid_out_in_full_bars_of_notatable_pieces(
        tpq: int, meters: list[tuple[int, tuple[int, int]]], notes: list[tuple[int, int, int]],
        program: int) -> None:
    from composer.score.durations import type_and_dots
    from composer.score.layout import lay_out_staff
    from composer.score.plan import plan_notation

    score = symusic.Score(tpq)
    for beat, (num, den) in meters:
        score.time_signatures.append(symusic.TimeSignature(beat * tpq, num, den))
    track = symusic.Track("", program, False)
    for start, length, pitch in notes:
        track.notes.append(symusic.Note(start * tpq // 480, max(1, length * tpq // 480), pitch, 80))
    score.tracks.append(track)
    plan = plan_notation(score)
    [part] = plan.parts
    written = set()  # (onset in quarters, pitch) of every note head that is struck, not tied into
    for staff in part.staves:
        for bar, voices in zip(plan.bars, lay_out_staff(staff.voices, plan.bars, part.grid), strict=True):
            for _, pieces in voices:
                assert sum(p.length for p in pieces) == bar.length
                for piece in pieces:
                    if not piece.full_bar:
                        type_and_dots(piece.written)  # raises for a non-notatable length
                    if piece.tie in (None, "start"):
                        written |= {(bar.start + piece.offset, pitch) for pitch in piece.pitches}
    # Every note is written, struck at its onset snapped to the part's grid. Notes merge only
    # where the grid makes them one: the same pitch snapped to the same onset is one note head
    # (a duplicate, or a unison that the voices of one staff then share); a note still
    # sounding when its pitch strikes again is shortened there, and notes that do not fit the
    # staff's voices are shortened or joined into chords, but none of these loses an onset.
    [track] = score.tracks
    assert written == {(snap(part.grid, F(n.time, tpq)), n.pitch) for n in track.notes}


def test_meter_change_inside_a_bar_gives_a_short_bar_of_its_own() -> None:
    bars = make_bars([(F(0), 4, 4), (F(6), 3, 4)], F(12))
    assert [(b.start, b.length, b.meter) for b in bars[:3]] == [
        (0, 4, (4, 4)), (4, 2, (2, 4)), (6, 3, (3, 4))]


def test_triplets_get_a_triplet_grid_and_one_bracket_per_beat() -> None:
    bars = make_bars([(F(0), 4, 4)], F(4))
    notes = [(F(0), F(1, 3)), (F(1, 3), F(2, 3)), (F(2, 3), F(1)), (F(1), F(3, 2)), (F(3, 2), F(4))]
    grid = choose_grid(bars, notes, (4, 3, 8, 6), 0.01)
    assert grid.is_triplet(0) and not grid.is_triplet(1)
    by_bar = voice_notes([Event(s, e, (60,)) for s, e in notes], bars, grid)
    [(_, pieces)] = bar_voices([by_bar[0]], bars[0], grid)
    assert [p.tuplet for p in pieces[:3]] == ["start", "continue", "stop"]
    assert all(p.written == F(1, 2) for p in pieces[:3])  # written as eighths, 3 in the time of 2
    assert pieces[3].tuplet is None and pieces[3].length == F(1, 2)


def test_a_note_inside_a_triplet_beat_is_split_at_the_beat() -> None:
    bars = make_bars([(F(0), 4, 4)], F(4))
    grid = choose_grid(bars, [(F(0), F(1, 3)), (F(1, 3), F(2))], (4, 3), 0.01)
    spans = split_in_bar(F(1, 3), F(2), bars[0], grid)
    assert spans == [(F(1, 3), F(1), True), (F(1), F(2), False)]


def test_sixteenths_are_beamed_by_beat_with_two_beams() -> None:
    bars = make_bars([(F(0), 2, 4)], F(2))
    grid = choose_grid(bars, [], (4,), 0.01)
    events = [Event(F(k, 4), F(k + 1, 4), (60 + k,)) for k in range(4)] + [Event(F(1), F(2), (67,))]
    [(_, pieces)] = bar_voices([voice_notes(events, bars, grid)[0]], bars[0], grid)
    assert [p.beams for p in pieces] == [("start", "start"), ("continue", "continue"),
                                         ("continue", "continue"), ("stop", "stop"), ()]


def test_notes_of_two_voices_that_do_not_overlap_share_one_voice() -> None:
    bars = make_bars([(F(0), 4, 4)], F(4))
    grid = choose_grid(bars, [], (4,), 0.01)
    upper = voice_notes([Event(F(0), F(2), (72,))], bars, grid)[0]
    lower = voice_notes([Event(F(2), F(4), (55,))], bars, grid)[0]
    assert len(bar_voices([upper, lower], bars[0], grid)) == 1
    both = voice_notes([Event(F(0), F(4), (60,))], bars, grid)[0]
    assert len(bar_voices([upper, both], bars[0], grid)) == 2


# ---------------------------------------------------------------- staves and voices


def test_four_voices_in_one_track_become_four_lines() -> None:
    notes = [(F(s), F(s + d), p) for voice in chorale_parts() for s, d, p in voice]
    lines = separate_lines([Event(s, e, (p,)) for s, e, p in notes])
    assert len(lines) == 4
    means = sorted((ln.mean_pitch for ln in lines), reverse=True)
    assert means[0] > 70 and means[-1] < 58


def test_a_leap_does_not_open_a_second_line() -> None:
    events = [Event(F(0), F(1), (48,)), Event(F(1), F(2), (72,)), Event(F(2), F(3), (50,))]
    assert len(separate_lines(events)) == 1


def test_a_high_cello_passage_changes_clef_and_back() -> None:
    bars = [[48, 50, 52]] * 3 + [[69, 71, 72, 74]] * 3 + [[45, 43]] * 3
    plan = clef_plan(bars, "bass", changes=True)
    assert plan[0] == "bass" and plan[3] in ("tenor", "treble") and plan[6] == "bass"
    assert clef_plan(bars, "treble", changes=True) == {0: "treble"}  # violins do not change
    assert instrument_for(42).clef == "bass" and instrument_for(52).family == "voice"


# ---------------------------------------------------------------- symusic ↔ music21 round trip


def _notes(score: symusic.Score) -> list[tuple[int, int, int]]:
    scale = TPQ / score.tpq
    return sorted((round(n.time * scale), round(n.duration * scale), n.pitch)
                  for t in score.tracks for n in t.notes)


@pytest.mark.parametrize("text", [
    "tinynotation: 4/4 c4 d8 e f4. g8 a2 b4~ b1 c'8 d' e' f' g'2",
    "tinynotation: 3/4 e4 d c d e e e2 r4 trip{c8 d e} f4 g",
    "tinynotation: 6/8 c8 d e f4 g8 a4. b4. c'2. r4 r8 d'8 e' f'",
])
def test_round_trip_through_the_notation_keeps_every_note(text: str) -> None:
    from composer.io.notation import stream_to_score
    from composer.io.reader import parse_note_text
    from composer.score.write import score_to_stream

    original = stream_to_score(parse_note_text(text))
    notated = score_to_stream(original)
    again = stream_to_score(notated)
    assert _notes(again) == _notes(original)
    assert [(ts.numerator, ts.denominator) for ts in again.time_signatures][:1] == \
        [(ts.numerator, ts.denominator) for ts in original.time_signatures][:1]


def test_round_trip_of_a_four_part_chorale() -> None:
    from composer.io.notation import stream_to_score

    chorale = bach_chorale()
    again = stream_to_score(reparse(written_xml("bach")))
    assert _notes(again) == _notes(chorale)
    assert again.key_signatures[0].key == chorale.key_signatures[0].key


# ---------------------------------------------------------------- what the pages show


def test_a_chorale_has_named_voices_clefs_key_and_a_whole_tempo() -> None:
    import music21

    score = reparse(written_xml("bach"))
    names = [p.partName for p in score.parts]
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    clefs = [type(p.recurse().getElementsByClass(music21.clef.Clef).first()).__name__ for p in score.parts]
    assert clefs == ["TrebleClef", "TrebleClef", "Treble8vbClef", "BassClef"]
    assert score.recurse().getElementsByClass(music21.key.KeySignature).first().sharps == 3
    assert score.metadata.title == "Christ unser Herr"


def test_one_choir_track_becomes_a_grand_staff_with_two_voices_per_staff() -> None:
    import music21

    xml = written_xml("one_track")
    assert b"<per-minute>121</per-minute>" in xml  # 121.29 rounded
    score = reparse(xml)
    staves = list(score.parts)
    assert len(staves) == 2
    clefs = [staff.recurse().getElementsByClass(music21.clef.Clef).first() for staff in staves]
    assert isinstance(clefs[0], music21.clef.TrebleClef) and isinstance(clefs[1], music21.clef.BassClef)
    for staff, (low, high) in zip(staves, [(60, 84), (36, 72)], strict=True):
        first_bar = staff.getElementsByClass(music21.stream.Measure).first()
        assert len(first_bar.voices) == 2  # soprano + alto, tenor + bass
        pitches = [p.midi for n in staff.recurse().notes for p in n.pitches]
        assert low <= min(pitches) and max(pitches) <= high
    assert score.recurse().getElementsByClass(music21.key.KeySignature).first().sharps == 2  # analysed


def test_readability_checks_on_a_few_pieces() -> None:
    from composer.score.quality import QualityCounts, check_stream
    from composer.score.write import score_to_musicxml

    rng = [(k * 7919) % 13 for k in range(64)]  # deterministic "random" rhythm and pitches
    jig = [(k * 0.5, 0.5, 67 + rng[k] % 8) for k in range(48)]
    triplets = [(k / 3, 1 / 3, 72 + rng[k] % 5) for k in range(24)] + [(8 + k, 1.0, 70) for k in range(8)]
    piano = [(k * 0.25, 0.25, 72 + rng[k] % 12) for k in range(64)] + \
            [(k * 2.0, 2.0, p) for k in range(8) for p in (36 + rng[k] % 5, 43 + rng[k] % 5)]
    sloppy = [(k * 0.5 + (rng[k] - 6) / 97, 0.45 + rng[k] / 131, 62 + rng[k] % 9) for k in range(40)]
    pieces = {
        "jig": make_score([("Fiddle", 110, jig)], meter=(6, 8), key=(2, 0)),
        "triplets": make_score([("Flute", 73, triplets)]),
        "piano": make_score([("Piano", 0, piano)]),
        "sloppy": make_score([("", 0, sloppy)], meter=(3, 4)),
    }
    totals = QualityCounts()
    for name, score in pieces.items():
        totals.add(check_stream(reparse(score_to_musicxml(score, title=name)), name))
    totals.add(check_stream(reparse(written_xml("bach")), "bach"))
    summary = totals.summary()
    assert summary["full_measures"] == 1.0, totals.problems
    assert summary["notatable"] >= 0.98, totals.problems
    assert summary["key_signature"] >= 0.8, totals.problems
    assert summary["ledger_over_3"] <= 0.05


def test_a_played_melody_is_written_as_plain_eighths() -> None:
    from composer.score.layout import lay_out_staff
    from composer.score.plan import plan_notation

    rng = [(k * 7919) % 13 for k in range(40)]
    played = [(1 + k * 0.5 + (rng[k] - 6) / 97, 0.45 + rng[k] / 131, 62 + rng[k] % 9) for k in range(40)]
    plan = plan_notation(make_score([("", 0, played)], meter=(3, 4)))
    [part] = plan.parts
    [staff] = part.staves
    assert len(staff.voices) == 1  # legato overlaps do not open a second voice
    lengths = {p.length for bar in lay_out_staff(staff.voices, plan.bars, part.grid)
               for _, pieces in bar for p in pieces if p.pitches}
    assert lengths == {F(1, 2)}


def test_verovio_reads_our_musicxml_without_warnings() -> None:
    from composer.score.render import engrave

    for kind in ("bach", "one_track"):
        pages, messages = engrave(written_xml(kind))
        assert pages and pages[0].startswith("<svg") and messages == []


@pytest.mark.skipif(not (shutil.which("mscore3") or shutil.which("musescore3")),
                    reason="MuseScore 3 is not installed (apt-get install musescore3)")
def test_musescore_converts_our_musicxml_to_pdf(tmp_path: Path) -> None:
    xml = tmp_path / "chorale.musicxml"
    xml.write_bytes(written_xml("bach"))
    pdf = tmp_path / "chorale.pdf"
    program = shutil.which("mscore3") or shutil.which("musescore3")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run([program, "-o", str(pdf), str(xml)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "error" not in result.stderr.lower(), result.stderr


# ---------------------------------------------------------------- files


def test_write_score_formats_pages_and_overwrite_rules(tmp_path: Path) -> None:
    from composer.score.write import write_score

    score = make_score([("Flute", 73, [(k, 1.0, 72 + k % 5) for k in range(16)])])
    [pdf] = write_score(score, tmp_path / "a.pdf", title="T")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_mode & 0o044
    with pytest.raises(OutputError, match="does not exist"):  # no folder is made silently
        write_score(score, tmp_path / "pages" / "a.svg")
    (tmp_path / "pages").mkdir()
    svgs = write_score(score, tmp_path / "pages" / "a.svg")
    assert [p.name for p in svgs] == ["a-1.svg"] and svgs[0].read_text().startswith("<svg")
    [png] = write_score(score, tmp_path / "a.png")
    assert png.name == "a-1.png" and png.read_bytes()[:4] == b"\x89PNG"
    [mxl] = write_score(score, tmp_path / "a.mxl")
    import zipfile

    assert "score.musicxml" in zipfile.ZipFile(mxl).namelist()
    with pytest.raises(OutputError, match="already exists"):
        write_score(score, tmp_path / "a.pdf")
    (tmp_path / "a-2.png").write_bytes(b"old page")
    write_score(score, tmp_path / "a.png", force=True)
    assert not (tmp_path / "a-2.png").exists()  # a stale page of an earlier, longer score
    with pytest.raises(OutputError, match="unknown score format"):
        write_score(score, tmp_path / "a.docx")
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def _midi_with_text(score: symusic.Score, text: str | None) -> bytes:
    import mido

    midi = mido.MidiFile(file=io.BytesIO(score.dumps_midi()))
    if text is not None:
        midi.tracks[0].insert(0, mido.MetaMessage("text", text=text, time=0))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


@pytest.mark.parametrize(("text", "title", "subtitle"), [
    ('composer:{"style": "bach", "seed": 7, "model": "m1"}', "Chorale", "style bach · seed 7 · model m1"),
    (json.dumps({"composer": {"style": "irish", "seed": 3}}), "Irish Tune", "style irish · seed 3"),
    ("composer:{not json", "Piece", None),
    ("just a comment", "Piece", None),
    (None, "Piece", None),
])
def test_titles_from_provenance(tmp_path: Path, text: str | None, title: str, subtitle: str | None) -> None:
    import music21

    from composer.score.write import score_file

    path = tmp_path / "piece.mid"
    path.write_bytes(_midi_with_text(make_score([("", 73, [(0, 4.0, 72)])]), text))
    [out] = score_file(path, tmp_path / "piece.musicxml")
    assert reparse(out.read_bytes()).metadata.bestTitle == title
    [credit] = music21.converter.parse(out).getElementsByClass("TextBox")  # one title block
    assert credit.content.startswith(title)
    assert (subtitle in credit.content) if subtitle else credit.content == title


def test_key_comes_from_analysis_when_missing_or_a_lone_default() -> None:
    import music21

    from composer.score.config import ScoreConfig
    from composer.score.write import score_to_musicxml

    auto = ScoreConfig(key_source="auto")
    d_major = [(k, 1.0, p) for k, p in enumerate([62, 66, 69, 74, 73, 69, 66, 64, 62, 61, 62, 69])]
    for key in (None, (0, 0)):
        xml = score_to_musicxml(make_score([("", 73, d_major)], key=key), config=auto)
        assert reparse(xml).recurse().getElementsByClass(music21.key.KeySignature).first().sharps == 2
    said_minor = make_score([("", 73, d_major)], key=(-1, 1))  # the file says D minor
    xml = score_to_musicxml(said_minor, config=auto)
    assert reparse(xml).recurse().getElementsByClass(music21.key.KeySignature).first().sharps == -1
    xml = score_to_musicxml(said_minor)  # the default writes the analysed key
    assert reparse(xml).recurse().getElementsByClass(music21.key.KeySignature).first().sharps == 2


def test_transposing_instruments_are_written_in_concert_pitch() -> None:
    from composer.score.write import score_to_musicxml

    for program in (56, 60, 71):  # trumpet, horn, clarinet
        xml = score_to_musicxml(make_score([("", program, [(0, 1.0, 60), (1, 1.0, 64)])]))
        assert b"<transpose>" not in xml
        assert [n.pitch.midi for n in reparse(xml).recurse().notes] == [60, 64]


def test_drum_tracks_are_left_out_with_a_warning() -> None:
    from composer.score.write import score_to_stream

    score = make_score([("Flute", 73, [(0, 4.0, 72)])])
    drums = symusic.Track("Drums", 0, True)
    drums.notes.append(symusic.Note(0, TPQ, 36, 100))
    score.tracks.append(drums)
    with pytest.warns(UserWarning, match="drum"):
        stream = score_to_stream(score)
    assert len(stream.parts) == 1


# ---------------------------------------------------------------- command line


def test_score_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from composer.cli import ComposerGroup
    from composer.cli.score_cmd import score as score_command

    group = ComposerGroup()
    group.add_command(score_command)
    source = tmp_path / "tune.mid"
    source.write_bytes(make_score([("", 73, [(k, 1.0, 72 + k % 3) for k in range(8)])]).dumps_midi())
    runner = CliRunner()
    result = runner.invoke(group, ["score", str(source), "-o", str(tmp_path / "tune.svg")])
    assert result.exit_code == 0, result.output
    assert "tune-1.svg" in result.output and (tmp_path / "tune-1.svg").is_file()
    again = runner.invoke(group, ["score", str(source), "-o", str(tmp_path / "tune.svg")])
    assert again.exit_code == 2 and again.output.startswith("error: ") and "already exists" in again.output
    missing = runner.invoke(group, ["score", str(tmp_path / "nope.mid"), "-o", str(tmp_path / "x.pdf")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    helped = runner.invoke(group, ["score", "--help"])
    assert "Examples" in helped.output


def test_score_command_module_does_not_import_music21() -> None:
    code = ("import sys\nimport composer.cli.score_cmd\n"
            "print([m for m in ('music21', 'torch', 'verovio') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_four_voices_in_a_long_bar_fill_it_after_rereading() -> None:
    from composer.score.quality import check_stream
    from composer.score.write import score_to_musicxml

    # a 4/2 bar of four voices, one of which rests for a whole note and then enters
    # (from a generated Monteverdi piece; the whole rest used to be re-read as a bar rest)
    notes = [(0.0, 2.0, 63), (0.0, 2.0, 67), (0.0, 2.0, 72), (0.0, 2.0, 75), (2.0, 2.0, 63),
             (2.0, 2.0, 67), (2.0, 2.0, 74), (2.0, 2.0, 77), (4.0, 2.0, 67), (4.0, 3.0, 63),
             (4.0, 4.0, 63), (4.0, 4.0, 79), (6.0, 2.0, 69), (7.0, 1.0, 67)]
    score = make_score([("Choir", 52, notes)], meter=(4, 2))
    counts = check_stream(reparse(score_to_musicxml(score)))
    assert counts.measures and counts.full_measures == counts.measures


def test_ledger_lines_by_hand() -> None:
    from composer.score.clefs import ledger_lines

    # bass clef: A3 is the top line, C4 needs one ledger line, E4 two, G4 and A4 three, B4 four
    assert [ledger_lines(p, "bass") for p in (57, 59, 60, 64, 67, 69, 71)] == [0, 0, 1, 2, 3, 3, 4]
    # treble clef: E4 is the bottom line, C4 needs one, A3 two; A5 one above, C6 two
    assert [ledger_lines(p, "treble") for p in (64, 62, 60, 57, 79, 81, 84)] == [0, 0, 1, 2, 0, 1, 2]
