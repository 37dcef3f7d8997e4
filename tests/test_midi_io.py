from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import (
    END_OF_TRACK,
    header,
    midi_file,
    note_events,
    tempo_event,
    track,
)

from composer.errors import (
    ComposerError,
    InputFileError,
    LimitExceededError,
    NoPitchedNotesError,
    UnsupportedFormatError,
)
from composer.io.reader import ReadLimits, read_score, score_from_midi_bytes


def _bad_files() -> dict[str, tuple[bytes, type[ComposerError], str]]:
    good = midi_file()
    million_notes = b"\x00\x90\x3c\x40\x01\x80\x3c\x00" * 1_000_000
    return {
        "empty": (b"", InputFileError, "empty"),
        "truncated": (good[:30], InputFileError, "corrupt MIDI"),
        "header_only": (good[:10], InputFileError, "truncated"),
        "not_midi": (b"This is a text file, not a song.\n" * 4, InputFileError, "not a MIDI file"),
        "smpte": (midi_file(division=0xE728), UnsupportedFormatError, "SMPTE"),
        "tpq_0": (midi_file(division=0), InputFileError, "0 ticks per quarter"),
        "tracks_5000": (
            header(1, 5000) + track(note_events([60]) + END_OF_TRACK) * 5000,
            LimitExceededError,
            "5000 tracks",
        ),
        "notes_1m": (header(0, 1) + track(million_notes + END_OF_TRACK), LimitExceededError,
                     "1000000 notes"),
        "format_2": (midi_file(fmt=2), UnsupportedFormatError, "format 2"),
        "tempo_0": (midi_file(extra=tempo_event(0)), InputFileError, "absurd tempo"),
        "tempo_huge": (midi_file(extra=tempo_event(1)), InputFileError, "absurd tempo"),
        "drums_only": (midi_file(channel=9), NoPitchedNotesError, "no pitched notes"),
        "no_notes": (header(1, 1) + track(END_OF_TRACK), NoPitchedNotesError, "no pitched notes"),
        "velocity_200": (header(1, 1) + track(b"\x00\x90\x3c\xc8\x10\x80\x3c\x00" + END_OF_TRACK),
                         InputFileError, "corrupt MIDI"),
        "huge_delta": (header(1, 1) + track(b"\x00\x90\x3c\x40\x8f\xff\xff\x7f\x80\x3c\x00"
                                            + END_OF_TRACK), LimitExceededError, "minutes"),
    }


BAD_FILES = _bad_files()


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_midi_gives_clear_error_naming_the_file(tmp_path: Path, name: str) -> None:
    data, error, phrase = BAD_FILES[name]
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    with pytest.raises(error) as caught:
        read_score(path)
    message = str(caught.value)
    assert str(path) in message
    assert phrase in message
    assert "\n" not in message


def test_reads_a_valid_midi(melody_midi: Path) -> None:
    score = read_score(melody_midi)
    notes = score.tracks[0].notes
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67, 65, 64, 62]
    assert [n.time for n in notes] == [i * 480 for i in range(8)]


def test_riff_wrapped_midi_is_unwrapped(tmp_path: Path) -> None:
    smf = midi_file()
    data_chunk = b"data" + len(smf).to_bytes(4, "little") + smf
    riff = b"RIFF" + (4 + len(data_chunk)).to_bytes(4, "little") + b"RMID" + data_chunk
    path = tmp_path / "song.rmi"
    path.write_bytes(riff)
    assert read_score(path).note_num() == 8


def test_zero_length_notes_are_read_with_a_warning() -> None:
    data = header(1, 1) + track(b"\x00\x90\x3c\x40\x00\x80\x3c\x00" + note_events([64]) + END_OF_TRACK)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = score_from_midi_bytes(data, "zero.mid")
    assert score.note_num() == 2
    assert min(n.duration for n in score.tracks[0].notes) > 0
    assert any("zero-length" in str(w.message) for w in caught)


def test_file_size_limit(tmp_path: Path, melody_midi: Path) -> None:
    with pytest.raises(LimitExceededError, match="MB"):
        read_score(melody_midi, ReadLimits(max_file_bytes=10))


def test_directory_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="is a directory"):
        read_score(tmp_path)
    with pytest.raises(InputFileError, match="no such file"):
        read_score(tmp_path / "nothing.mid")
    other = tmp_path / "notes.docx"
    other.write_bytes(b"PK")
    with pytest.raises(UnsupportedFormatError, match="unsupported file type"):
        read_score(other)


def test_note_text_melody() -> None:
    score = read_score("tinynotation: 3/4 c4 d8 e8 f4 g2.")
    notes = score.tracks[0].notes
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67]
    assert [n.time for n in notes] == [0, 480, 720, 960, 1440]
    assert [n.duration for n in notes] == [480, 240, 240, 480, 1440]
    assert (score.time_signatures[0].numerator, score.time_signatures[0].denominator) == (3, 4)


def test_note_text_without_notes() -> None:
    with pytest.raises(InputFileError, match="note text"):
        read_score("tinynotation:   ")


def test_ties_are_merged_and_pickups_padded(tmp_path: Path) -> None:
    abc = "X:1\nT:t\nM:4/4\nL:1/4\nK:C\nG | c2 d2- | d4 |]\n"
    path = tmp_path / "tune.abc"
    path.write_text(abc)
    notes = read_score(path).tracks[0].notes
    # the pickup G sits on beat 4 of a padded first bar; the tied d is one note of 6 beats
    assert [(n.time, n.duration, n.pitch) for n in notes] == [
        (1440, 480, 67), (1920, 960, 72), (2880, 2880, 74)
    ]


def test_musicxml_round_trip_and_syntax_error(tmp_path: Path) -> None:
    import music21

    stream = music21.converter.parse("tinyNotation: 2/4 e4 f# g2")
    good = tmp_path / "melody.musicxml"
    stream.write("musicxml", fp=str(good))
    assert [n.pitch for n in read_score(good).tracks[0].notes] == [64, 66, 67]
    broken = tmp_path / "broken.musicxml"
    broken.write_text(good.read_text()[:300])
    with pytest.raises(InputFileError, match="cannot parse as musicxml"):
        read_score(broken)


def test_abc_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.abc"
    path.write_text("X:2\nT:B\nM:0/0\nK:C\nL:1/4\nabcd|\n")
    with pytest.raises(InputFileError, match=r"bad\.abc"):
        read_score(path)


def test_kern_file(tmp_path: Path) -> None:
    path = tmp_path / "tune.krn"
    path.write_text("**kern\n*M2/4\n=1\n4c\n4e\n=2\n2g\n==\n*-\n")
    assert [n.pitch for n in read_score(path).tracks[0].notes] == [60, 64, 67]
