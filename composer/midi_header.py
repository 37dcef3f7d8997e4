"""Checks on the raw bytes of a Standard MIDI File, before any parser sees them.

symusic accepts some files it should not (a division of 0 ticks per quarter, a
header that announces thousands of tracks), so the fixed 14-byte header is read
here first. RIFF-wrapped MIDI (``.rmi``) is unwrapped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from composer.errors import InputFileError, LimitExceededError, UnsupportedFormatError

MTHD = b"MThd"


@dataclass(frozen=True)
class MidiHeader:
    format: int  # 0 single track, 1 parallel tracks, 2 independent sequences
    n_tracks: int  # as announced by the header
    ticks_per_quarter: int


def unwrap_riff(data: bytes, name: str) -> bytes:
    """Return the SMF inside a RIFF ``RMID`` container, or ``data`` unchanged."""
    if not data.startswith(b"RIFF"):
        return data
    if len(data) < 12 or data[8:12] != b"RMID":
        raise UnsupportedFormatError(f"{name}: a RIFF file that is not RIFF-MIDI (RMID)")
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise InputFileError(f"{name}: RIFF-MIDI file without a 'data' chunk")


def read_header(data: bytes, name: str, max_tracks: int) -> MidiHeader:
    """Validate the MThd chunk; raise an ``InputFileError`` naming the problem."""
    if len(data) == 0:
        raise InputFileError(f"{name}: the file is empty")
    if not data.startswith(MTHD):
        raise InputFileError(f"{name}: not a MIDI file (no 'MThd' header)")
    if len(data) < 14:
        raise InputFileError(f"{name}: truncated MIDI file ({len(data)} bytes)")
    length, fmt, n_tracks, division = struct.unpack(">IHHH", data[4:14])
    if length < 6:
        raise InputFileError(f"{name}: corrupt MIDI header (length {length})")
    if fmt not in (0, 1, 2):
        raise InputFileError(f"{name}: unknown MIDI format {fmt}")
    if fmt == 2:
        raise UnsupportedFormatError(
            f"{name}: MIDI format 2 (independent sequences) is not supported; "
            "save it as format 1"
        )
    if division & 0x8000:
        raise UnsupportedFormatError(
            f"{name}: SMPTE time division is not supported; save it with ticks per quarter note"
        )
    if division == 0:
        raise InputFileError(f"{name}: corrupt MIDI header (0 ticks per quarter note)")
    if n_tracks == 0:
        raise InputFileError(f"{name}: the MIDI header announces no tracks")
    if n_tracks > max_tracks:
        raise LimitExceededError(
            f"{name}: {n_tracks} tracks, more than the limit of {max_tracks}"
        )
    return MidiHeader(format=fmt, n_tracks=n_tracks, ticks_per_quarter=division)
