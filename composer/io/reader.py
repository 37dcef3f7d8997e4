"""The one safe way to read a user's file (or typed melody) into a score.

Everything becomes a ``symusic.Score`` in ticks. MIDI is parsed by symusic after its
header has been checked; MusicXML, MXL, ABC and Humdrum/kern go through music21; a
melody can be typed as music21 tinyNotation (``"tinynotation: 4/4 c4 d e f"``).
Every failure is an ``InputFileError`` that names the file and the reason.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import (
    InputFileError,
    LimitExceededError,
    NoPitchedNotesError,
    ReadTimeoutError,
    RepairWarning,
    UnsupportedFormatError,
)
from composer.io.deadline import time_limit
from composer.io.midi_header import count_dangling_notes, read_header, unwrap_riff

if TYPE_CHECKING:
    import music21
    import symusic

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".rmi", ".smf", ".kar")
MUSIC21_FORMATS = {
    ".mxl": "musicxml",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".abc": "abc",
    ".krn": "humdrum",
}
SUPPORTED_SUFFIXES = MIDI_SUFFIXES + tuple(MUSIC21_FORMATS)
NOTE_TEXT_PREFIX = "tinynotation:"


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what a single input may hold; beyond them a file is refused, not read."""

    max_file_bytes: int = 32 * 1024 * 1024  # bigger files are almost never music
    max_tracks: int = 512  # MIDI tracks (or notation parts)
    max_notes: int = 500_000  # a long symphony has ~100k
    max_seconds: float = 3 * 3600.0  # total duration after applying the tempo map
    min_qpm: float = 5.0  # tempo range, quarter notes per minute
    max_qpm: float = 1000.0
    parse_seconds: float | None = 30.0  # wall-clock limit on reading notation with music21 ...
    parse_seconds_per_mb: float = 30.0  # ... plus this much per MB of file


MAX_METER_BEATS = 64  # music21 needs seconds to build a 128-beat meter, minutes for 1000
MAX_UNPACKED_BYTES = 128 * 1024 * 1024  # an MXL archive that unpacks to more is refused
MAX_NOTE_QUARTERS = 64  # music21 builds a meter as long as an ABC note that fills its bar
_METERS = {  # where each notation writes a meter's beats (the numerator)
    "abc": re.compile(rb"(?:^|[\n\r\[])[ \t]*M:[ \t]*([^/\n\r\]]*)/"),
    "musicxml": re.compile(rb"<beats\b[^>]*>([^<]*)</beats>"),
    "humdrum": re.compile(rb"\*M([0-9+]+)/"),
}


def is_note_text(source: str | Path) -> bool:
    """True when ``source`` is a typed melody rather than a file name."""
    return isinstance(source, str) and source.strip().lower().startswith(NOTE_TEXT_PREFIX)


def detect_format(path: Path) -> str:
    """``"midi"`` or the music21 format name for a path, by its suffix."""
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return "midi"
    if suffix in MUSIC21_FORMATS:
        return MUSIC21_FORMATS[suffix]
    known = " ".join(SUPPORTED_SUFFIXES)
    raise UnsupportedFormatError(f"{path}: unsupported file type '{suffix}'; use one of {known}")


def read_score(source: str | Path, limits: ReadLimits | None = None) -> symusic.Score:
    """Read a MIDI/MusicXML/MXL/ABC/kern file, or typed note text, into a checked score."""
    limits = limits or ReadLimits()
    if is_note_text(source):
        stream = parse_note_text(str(source), limits)
        return score_from_stream(stream, "note text", limits)
    path = Path(source)
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, not a file")
    fmt = detect_format(path)
    data = read_bytes(path, limits)
    if fmt == "midi":
        return score_from_midi_bytes(data, str(path), limits)
    seconds = None
    if limits.parse_seconds is not None:
        seconds = limits.parse_seconds + limits.parse_seconds_per_mb * len(data) / 1e6

    def _timeout() -> ReadTimeoutError:
        return ReadTimeoutError(f"{path}: reading took longer than {seconds:.0f} s")

    with time_limit(seconds, _timeout):  # music21 can hang on hostile notation
        stream = parse_music21(path, fmt, str(path), replace(limits, parse_seconds=None))
        return score_from_stream(stream, str(path), limits)


def read_bytes(path: Path, limits: ReadLimits) -> bytes:
    """The file's bytes, refusing folders, devices, pipes, missing and oversized files."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(f"{path}: is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):  # a pipe or device could block or never end
            raise InputFileError(f"{path}: not a regular file")
        if info.st_size > limits.max_file_bytes:
            raise LimitExceededError(
                f"{path}: {info.st_size / 1e6:.1f} MB, more than the limit of "
                f"{limits.max_file_bytes / 1e6:.0f} MB"
            )
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except PermissionError:
        raise InputFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise InputFileError(f"{path}: the file is empty")
    if len(data) > limits.max_file_bytes:  # it grew while being read
        raise LimitExceededError(f"{path}: more than the limit of {limits.max_file_bytes / 1e6:.0f} MB")
    return data


def score_from_midi_bytes(data: bytes, name: str, limits: ReadLimits | None = None) -> symusic.Score:
    """Parse Standard MIDI File bytes (RIFF-wrapped or not) into a checked score."""
    import symusic

    limits = limits or ReadLimits()
    if len(data) > limits.max_file_bytes:
        raise LimitExceededError(f"{name}: {len(data)} bytes, more than the limit")
    data = unwrap_riff(data, name)
    read_header(data, name, limits.max_tracks)
    try:
        score = symusic.Score.from_midi(data)
    except Exception as exc:  # symusic reports every corruption as a RuntimeError
        raise InputFileError(f"{name}: corrupt MIDI data ({_symusic_reason(exc)})") from None
    check_score(score, name, limits)
    dangling = count_dangling_notes(data)
    if dangling:
        warnings.warn(f"{name}: {_notes(dangling)} without a note-off left out", RepairWarning,
                      stacklevel=2)
    return score


def _symusic_reason(exc: BaseException) -> str:
    reason = str(exc).replace("MiniMidi: ", "").split("!")[0].strip()
    reason = reason.splitlines()[0][:160] if reason else type(exc).__name__
    velocity = re.search(r"velocity=(\d+)", reason)
    if velocity:
        return f"a note velocity of {velocity.group(1)}; MIDI allows 0-127"
    return reason


def parse_note_text(text: str, limits: ReadLimits | None = None) -> music21.stream.Stream:
    """Parse tinyNotation such as ``"tinynotation: 3/4 e4 d c"``."""
    import music21

    limits = limits or ReadLimits()
    body = text.strip()[len(NOTE_TEXT_PREFIX) :].strip()
    if not body:
        raise InputFileError("note text: no notes after 'tinynotation:'")
    try:
        with time_limit(limits.parse_seconds, lambda: ReadTimeoutError("note text: parse timed out")), \
                _music21_chatter_logged():
            return music21.converter.parse(body, format="tinyNotation")
    except (InputFileError, MemoryError):
        raise
    except Exception as exc:
        raise InputFileError(f"note text: cannot parse '{body[:40]}' ({_first_line(exc)})") from None


def parse_music21(
    source: Path | str, fmt: str, name: str, limits: ReadLimits | None = None
) -> music21.stream.Stream:
    """Parse a notation file (a ``Path``) or notation text (a ``str``) with music21.

    Runs under a time limit. A multi-tune ABC book or an opus yields its first
    score, with a warning.
    """
    import music21

    limits = limits or ReadLimits()
    raw = read_bytes(source, limits) if isinstance(source, Path) else source.encode("utf-8", "replace")
    check_notation(raw, fmt, name, limits)

    def _timeout() -> ReadTimeoutError:
        return ReadTimeoutError(f"{name}: parsing took longer than {limits.parse_seconds:g} s")

    try:
        with time_limit(limits.parse_seconds, _timeout), _music21_chatter_logged():
            if isinstance(source, Path):
                stream = music21.converter.parseFile(source, format=fmt, forceSource=True)
            else:
                stream = music21.converter.parseData(source, format=fmt, forceSource=True)
    except (InputFileError, MemoryError):
        raise
    except Exception as exc:  # music21 raises many types on malformed notation
        raise InputFileError(f"{name}: cannot parse as {fmt} ({_first_line(exc)})") from None
    if isinstance(stream, music21.stream.Opus):
        scores = list(stream.scores)
        if not scores:
            raise NoPitchedNotesError(f"{name}: no pitched notes (an empty collection)")
        if len(scores) > 1:
            warnings.warn(f"{name}: holds {len(scores)} pieces; using the first", RepairWarning,
                          stacklevel=2)
        stream = scores[0]
    return stream


def check_notation(data: bytes, fmt: str, name: str, limits: ReadLimits | None = None) -> None:
    """Refuse notation that would make music21 hang or fill memory, before it parses it:
    meters of more than ``MAX_METER_BEATS`` beats, MXL archives that unpack too big."""
    limits = limits or ReadLimits()
    if data.startswith(b"PK\x03\x04"):
        data = _unpack_mxl(data, name)
    pattern = _METERS.get(fmt)
    if pattern is None:
        return
    for match in pattern.finditer(data):
        numbers = re.findall(rb"\d+", match.group(1))
        if fmt == "abc":  # music21 reads the digits of an ABC meter as one number: 2+3+2 is 232
            numbers = [b"".join(numbers)] if numbers else []
        beats = sum(int(n) if len(n) < 10 else 10**9 for n in numbers)
        if beats > MAX_METER_BEATS:
            shown = match.group(1).decode("latin-1").strip()[:20]
            raise InputFileError(f"{name}: a time signature of {shown} beats; at most "
                                 f"{MAX_METER_BEATS} are read")
    if fmt == "abc":
        _check_abc_lengths(data, name)


def _check_abc_lengths(data: bytes, name: str) -> None:
    """Refuse ABC notes longer than ``MAX_NOTE_QUARTERS`` (``B99999``): music21 would make
    a bar, and a meter, as long as the note."""
    unit = Fraction(1, 8)  # of a whole note: ABC's default, until an L: field says otherwise
    for line in data.splitlines():
        field = _ABC_FIELD.match(line)
        if field:
            if field.group(1) == b"X":
                unit = Fraction(1, 8)
            elif field.group(1) == b"L":
                unit = _abc_unit(field.group(2)) or unit
            continue
        inline = [_abc_unit(u) for u in _ABC_INLINE_UNIT.findall(line)]
        here = min([unit, *(u for u in inline if u)])
        for digits in _ABC_NOTE_LENGTH.findall(_ABC_NOT_NOTES.sub(b"", line)):
            quarters = (int(digits) if len(digits) < 10 else 10**9) * here * 4
            if quarters > MAX_NOTE_QUARTERS:
                raise InputFileError(f"{name}: a note of {float(quarters):g} quarter notes; at "
                                     f"most {MAX_NOTE_QUARTERS} are read")
        if inline:
            unit = inline[-1] or unit


def _abc_unit(text: bytes) -> Fraction | None:
    match = re.match(rb"\s*(\d{1,6})\s*/\s*(\d{1,6})", text)
    if not match or int(match.group(2)) == 0:
        return None
    return Fraction(int(match.group(1)), int(match.group(2)))


_ABC_FIELD = re.compile(rb"^[ \t]*([A-Za-z]):(.*)$")
_ABC_INLINE_UNIT = re.compile(rb"\[L:([^\]]*)\]")
_ABC_NOT_NOTES = re.compile(rb"\"[^\"]*\"|![^!]*!|\[[A-Za-z]:[^\]]*\]|%.*")  # chords, decorations...
_ABC_NOTE_LENGTH = re.compile(rb"[A-Ga-gzx][,']*(\d+)")


def _unpack_mxl(data: bytes, name: str) -> bytes:
    """The XML documents of an MXL archive, read no further than ``MAX_UNPACKED_BYTES``."""
    import zipfile

    out = bytearray()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.filename.startswith("META-INF") or info.is_dir():
                    continue
                with archive.open(info) as member:
                    out += member.read(MAX_UNPACKED_BYTES + 1 - len(out))
                if len(out) > MAX_UNPACKED_BYTES:
                    raise LimitExceededError(f"{name}: unpacks to more than "
                                             f"{MAX_UNPACKED_BYTES / 1e6:.0f} MB")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError,
            ValueError) as exc:
        raise InputFileError(f"{name}: corrupt MXL archive ({_first_line(exc)})") from None
    return bytes(out)


def score_from_stream(
    stream: music21.stream.Stream, name: str, limits: ReadLimits | None = None
) -> symusic.Score:
    """Convert a parsed music21 stream and check it against the limits."""
    from composer.io.notation import stream_to_score

    limits = limits or ReadLimits()
    try:
        score = stream_to_score(stream)
    except Exception as exc:
        raise InputFileError(f"{name}: cannot convert the notation ({_first_line(exc)})") from None
    check_score(score, name, limits)
    return score


def check_score(score: symusic.Score, name: str, limits: ReadLimits) -> None:
    """Refuse scores beyond the limits or without pitched notes; repair what is harmless."""
    if len(score.tracks) > limits.max_tracks:
        raise LimitExceededError(
            f"{name}: {len(score.tracks)} tracks, more than the limit of {limits.max_tracks}"
        )
    n_notes = score.note_num()
    if n_notes > limits.max_notes:
        raise LimitExceededError(
            f"{name}: {n_notes} notes, more than the limit of {limits.max_notes}"
        )
    if score.tpq <= 0:
        raise InputFileError(f"{name}: corrupt timing ({score.tpq} ticks per quarter note)")
    for tempo in score.tempos:
        qpm = tempo.qpm
        if not (limits.min_qpm <= qpm <= limits.max_qpm):
            shown = "infinite" if qpm == float("inf") else f"{qpm:.4g}"
            raise InputFileError(
                f"{name}: absurd tempo {shown} quarter notes per minute at tick {tempo.time} "
                f"(allowed {limits.min_qpm:g}-{limits.max_qpm:g})"
            )
    pitched = sum(track.note_num() for track in score.tracks if not track.is_drum)
    if pitched == 0:
        what = "drums only" if n_notes else "no notes at all"
        raise NoPitchedNotesError(f"{name}: no pitched notes ({what})")
    seconds = score_seconds(score)
    if seconds > limits.max_seconds:
        raise LimitExceededError(
            f"{name}: lasts {seconds / 60:.0f} minutes, more than the limit of "
            f"{limits.max_seconds / 60:.0f}"
        )
    _repair_zero_length_notes(score, name)


def score_seconds(score: symusic.Score) -> float:
    """Duration in seconds under the score's tempo map."""
    if score.end() <= 0:
        return 0.0
    return float(score.to("second").end())


def _repair_zero_length_notes(score: symusic.Score, name: str) -> None:
    fixed = 0
    for track in score.tracks:
        for note in track.notes:
            if note.duration <= 0:
                note.duration = max(1, score.tpq // 16)
                fixed += 1
    if fixed:
        warnings.warn(f"{name}: {_notes(fixed, 'zero-length note')} lengthened to a 64th note",
                      RepairWarning, stacklevel=3)


@contextlib.contextmanager
def _music21_chatter_logged() -> Iterator[None]:
    """music21 writes its warnings to stderr; library code never prints, so they are logged."""
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stderr(chatter):
            yield
    finally:
        for line in chatter.getvalue().splitlines():
            if line.strip():
                log.debug("music21: %s", line.strip())


def _notes(count: int, what: str = "note") -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else "") or type(exc).__name__
