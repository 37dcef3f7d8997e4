"""Shared helpers: MIDI files built as bytes in code, small folders of music."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

# Tests use tiny models: one thread is as fast, and immune to other processes' load.
torch.set_num_threads(1)

END_OF_TRACK = b"\x00\xff\x2f\x00"


def varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def header(fmt: int = 1, n_tracks: int = 1, division: int = 480) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, n_tracks, division)


def track(events: bytes) -> bytes:
    return b"MTrk" + struct.pack(">I", len(events)) + events


def note_events(pitches: list[int], length: int = 480, channel: int = 0, velocity: int = 80) -> bytes:
    out = b""
    for pitch in pitches:
        out += b"\x00" + bytes([0x90 | channel, pitch, velocity])
        out += varlen(length) + bytes([0x80 | channel, pitch, 0])
    return out


def tempo_event(mspq: int) -> bytes:
    return b"\x00\xff\x51\x03" + mspq.to_bytes(3, "big")


def midi_file(pitches: list[int] | None = None, *, division: int = 480, fmt: int = 1,
              channel: int = 0, extra: bytes = b"") -> bytes:
    """A one-track MIDI file playing ``pitches`` as quarter notes."""
    pitches = pitches if pitches is not None else [60, 62, 64, 65, 67, 65, 64, 62]
    return header(fmt, 1, division) + track(extra + note_events(pitches, channel=channel) + END_OF_TRACK)


@pytest.fixture
def melody_midi(tmp_path: Path) -> Path:
    path = tmp_path / "melody.mid"
    path.write_bytes(midi_file())
    return path


ABC_BOOK = """%abc
A:a test book
X:1
T:First
M:3/4
L:1/8
K:G
GAB cde|d2 B2 G2|GAB cde|d6|
X:2
T:Broken
M:4/4
K:C
L:1/4
[[[[ | z4 ||| (((
X:3
T:Third
M:2/4
L:1/8
K:D
DF AF|dA FA|DF AF|D4|
"""
