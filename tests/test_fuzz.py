"""Fuzzing: mutated MIDI bytes may only ever raise ``ComposerError``.

Valid files (built in code) are flipped, cut, spliced and stuffed with boundary values,
then read (``read_score``) and engraved (``score_file``). Deterministic for CI; the long
run is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from conftest import END_OF_TRACK, header, midi_file, note_events, tempo_event, track
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError
from composer.io.reader import read_score
from composer.score.write import score_file


def _seeds() -> list[bytes]:
    meter = b"\x00\xff\x58\x04\x03\x02\x18\x08"  # 3/4
    key = b"\x00\xff\x59\x02\x02\x00"  # D major
    name = b"\x00\xff\x03\x05Flute"
    running = b"\x00\x91\x40\x50\x83\x60\x40\x00\x00\x43\x50\x83\x60\x43\x00"  # running status
    chord = b"\x00\x92\x3c\x40\x00\x40\x40\x00\x43\x40\x87\x40\x3c\x00\x00\x40\x00\x00\x43\x00"
    two_tracks = (header(1, 3) + track(tempo_event(500_000) + meter + key + END_OF_TRACK)
                  + track(name + b"\x00\xc1\x49" + running + END_OF_TRACK)
                  + track(b"\x00\xb2\x07\x64\x00\xe2\x00\x40" + chord + END_OF_TRACK))
    smf = midi_file([62, 64, 66, 67, 69])
    riff_chunk = b"data" + len(smf).to_bytes(4, "little") + smf
    riff = b"RIFF" + (4 + len(riff_chunk)).to_bytes(4, "little") + b"RMID" + riff_chunk
    return [midi_file(), two_tracks, riff, header(0, 1, 96) + track(note_events([48, 55, 60], 96)
                                                                    + END_OF_TRACK)]


SEEDS = _seeds()
BOUNDARY = [0x00, 0x01, 0x7F, 0x80, 0x81, 0xF0, 0xF7, 0xFF]


@st.composite
def mutated_midi(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice", "repeat"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from(BOUNDARY) | st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other) - 1))
            data[at:at] = other[start : start + draw(st.integers(1, 32))]
        elif kind == "repeat" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 16))] * draw(st.integers(2, 50))
    return bytes(data)


def _write(data: bytes, folder: str, suffix: str = ".mid") -> Path:
    path = Path(folder) / f"fuzz{suffix}"
    path.write_bytes(data)
    return path


def test_every_seed_reads_and_engraves(tmp_path: Path) -> None:
    """The mutations start from files that work, so the fuzz tests' success paths are taken
    (a seed that failed to read would leave them testing errors only)."""
    for number, data in enumerate(SEEDS):
        path = tmp_path / f"seed{number}.mid"
        path.write_bytes(data)
        assert read_score(path).note_num() > 0
        [written] = score_file(path, tmp_path / f"seed{number}.musicxml")
        assert written.stat().st_size > 0


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_midi(), suffix=st.sampled_from([".mid", ".rmi"]))
def test_loader_raises_only_composer_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            score = read_score(_write(data, folder, suffix))
        except ComposerError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert score.note_num() > 0


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_midi())
def test_score_raises_only_composer_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            written = score_file(_write(data, folder), Path(folder) / "out.musicxml")
        except ComposerError:
            return
        assert written[0].stat().st_size > 0


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(head=st.sampled_from([b"", b"X:1\nM:", b"X:1\nL:1/4\nM:3/4\nK:C\n", b"<beats>", b"*M", b"PK\x03\x04"]),
       body=st.binary(max_size=64) | st.text("0123456789+/:()[]MLXK \nABCabcz,'!\"%", max_size=64)
       .map(str.encode),
       fmt=st.sampled_from(["abc", "musicxml", "humdrum"]))
def test_notation_prechecks_raise_only_composer_errors(head: bytes, body: bytes, fmt: str) -> None:
    from composer.io.reader import check_notation

    try:
        check_notation(head + body, fmt, "fuzz")
    except ComposerError as exc:
        assert str(exc).startswith("fuzz: ")
