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


SCAN_BYTES = 4 * 1024 * 1024  # files up to this size are scanned for notes without a note-off


def count_dangling_notes(data: bytes) -> int:
    """Note-ons that no note-off ends, over every track of an SMF whose header was checked.

    symusic drops such notes silently; this count lets the reader say so. It walks the
    events in Python, so only the first ``SCAN_BYTES`` of a file are scanned.
    """
    (length,) = struct.unpack(">I", data[4:8])
    pos = 8 + length
    end_of_scan = min(len(data), SCAN_BYTES)
    dangling = 0
    while pos + 8 <= end_of_scan:
        (size,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        start = pos + 8
        if data[pos : pos + 4] == b"MTrk":
            dangling += _track_dangling(data, start, min(start + size, end_of_scan))
        pos = start + size
    return dangling


def _track_dangling(data: bytes, pos: int, end: int) -> int:
    """Open notes left at the end of one track chunk (``data[pos:end]``)."""
    open_notes = [0] * 2048  # channel * 128 + pitch → note-ons not yet ended
    status = 0
    while pos < end:
        while data[pos] & 0x80:  # the delta time: a variable-length number
            pos += 1
            if pos >= end:
                return sum(open_notes)
        pos += 1
        if pos >= end:
            break
        byte = data[pos]
        if byte & 0x80:
            pos += 1
            if byte >= 0xF0:  # meta (FF type length data) or sysex (F0/F7 length data)
                if byte == 0xFF:
                    pos += 1
                size = 0
                while pos < end:
                    part = data[pos]
                    pos += 1
                    size = (size << 7) | (part & 0x7F)
                    if not part & 0x80:
                        break
                pos += size
                continue
            status = byte
        elif not status:
            break  # data without a status: symusic has refused such files already
        kind = status & 0xF0
        if kind == 0x90 or kind == 0x80:
            if pos + 1 >= end:
                break
            key = ((status & 0x0F) << 7) | (data[pos] & 0x7F)
            if kind == 0x90 and data[pos + 1]:
                open_notes[key] += 1
            elif open_notes[key]:
                open_notes[key] -= 1
            pos += 2
        elif kind == 0xC0 or kind == 0xD0:
            pos += 1
        else:
            pos += 2
    return sum(open_notes)
