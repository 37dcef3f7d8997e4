"""Voices: which part of an ensemble a track is, what it is called, and key names.

A *voice* is a track's place among the tracks that share its General MIDI program, in
score order: the four choir tracks of a chorale are voices 0-3 of program 52 (soprano,
alto, tenor, bass), the two violins of a quartet voices 0 and 1 of program 40. The
rule needs no part names, so a user's MIDI corpus keeps its tracks apart the same way
as music21's scores do: tracks that share a program are told apart by their order.
Voices place tracks in the tokens. A *role* (``voice_roles``), which keys the usual range
of a voice, ranks singers by register instead, as decoded singers are named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import symusic

MAX_VOICES_PER_PROGRAM = 8  # tracks beyond this many on one program share the last voice

CHOIR_PROGRAMS = range(52, 55)  # Choir Aahs, Voice Oohs, Synth Voice
VIOLIN = 40

_CHOIR_NAMES = {
    1: ("Voice",),
    2: ("Cantus", "Tenor"),
    3: ("Cantus", "Tenor", "Bassus"),
    4: ("Soprano", "Alto", "Tenor", "Bass"),
    5: ("Soprano", "Alto", "Tenor", "Quintus", "Bass"),
    6: ("Soprano I", "Soprano II", "Alto", "Tenor", "Quintus", "Bass"),
}
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")


_SUNG_PART = re.compile(r"\b(soprano|sopran|alto|alt|tenor|bass|basso|bassus|cantus|canto|altus|"
                        r"quintus|sextus|discantus|superius|contratenor|triplum|motetus|voice)\b",
                        re.IGNORECASE)


def voice_indexes(programs: Sequence[int], names: Sequence[str] | None = None) -> list[int]:
    """Each track's voice: its rank among the tracks that share its program, in score order.

    On a choir program, tracks named as sung parts (Soprano, Tenor, Cantus…) rank before
    the others, so the horn that doubles the soprano in some Bach chorales does not
    push the soprano down to voice 1.

    >>> voice_indexes([52, 52, 52, 52])
    [0, 1, 2, 3]
    >>> voice_indexes([40, 40, 41, 42])
    [0, 1, 0, 0]
    >>> voice_indexes([52, 52, 52], ["Horn", "Soprano", "Bass"])
    [2, 0, 1]
    """
    names = list(names) if names is not None else [""] * len(programs)

    def rank(track: int) -> tuple[int, int]:
        sung = programs[track] in CHOIR_PROGRAMS and bool(_SUNG_PART.search(names[track] or ""))
        unnamed = programs[track] in CHOIR_PROGRAMS and not sung and any(
            _SUNG_PART.search(n or "") for p, n in zip(programs, names, strict=True) if p == programs[track])
        return (1 if unnamed else 0, track)

    out = [0] * len(programs)
    seen: dict[int, int] = {}
    for track in sorted(range(len(programs)), key=rank):
        program = programs[track]
        out[track] = min(seen.get(program, 0), MAX_VOICES_PER_PROGRAM - 1)
        seen[program] = seen.get(program, 0) + 1
    return out


def voice_name(instrument: str, program: int, index: int, count: int) -> str:
    """The track name of voice ``index`` of ``count`` voices on ``program``.

    Choirs get the names of their parts (Soprano, Alto, Tenor, Bass for four voices;
    Cantus, Tenor, Bassus for three); other instruments their name and a Roman numeral
    when there are several ("Violin I", "Violin II").
    """
    if program in CHOIR_PROGRAMS:
        names = _CHOIR_NAMES.get(count)
        if names and index < len(names):
            return names[index]
        return f"Voice {index + 1}"
    if count <= 1:
        return instrument
    numeral = _ROMAN[index] if index < len(_ROMAN) else str(index + 1)
    return f"{instrument} {numeral}".strip()


def is_monophonic_voice(program: int) -> bool:
    """Whether a voice on ``program`` sings or plays one note at a time (choirs, winds, brass)."""
    return program in CHOIR_PROGRAMS or 56 <= program <= 79


def max_chord(program: int) -> int:
    """Most notes a voice on ``program`` may sound at once: 1 for a singer or a wind, 2 for
    a bowed string (a double stop), otherwise no limit (0)."""
    if is_monophonic_voice(program):
        return 1
    if 40 <= program <= 43:
        return 2
    return 0


# Sung parts as corpora name them (a word's start: "tenor" also finds Tenore, "quint"
# Quinto and Quintus), for ranking by register. A wider net than _SUNG_PART, which places
# voices in the tokens and so must keep reading names as the trained model's tokens did.
_SUNG_ROLE = re.compile(r"\b(s\.|a\.|t\.|b\.|sopran|mezzo|contralto|alt|tenor|contratenor|baritone|"
                        r"bass|cant|quint|sext|sest|discantus|superius|triplum|motetus|voice)",
                        re.IGNORECASE)


def voice_roles(score: symusic.Score) -> list[str | None]:
    """Each track's role, ``"<program>:<voice>"`` (``"52:0"`` is a choir's top voice); ``None``
    for a drum track. Roles, unlike track names, are the same in a corpus piece (whose
    parts are called "S." or "Cello") and in a generated one ("Soprano", "Violoncello").

    Singers are ranked by register, highest first, as generated voices are named: corpora
    order their parts differently (Monteverdi's Quinto, a second soprano, comes second, a
    Palestrina fifth part is a tenor). Sung parts rank before other tracks on a choir
    program (a horn doubling the soprano). Other instruments keep score order.
    """
    pitched = [t for t in score.tracks if not t.is_drum]
    voices = voice_indexes([t.program for t in pitched], [t.name for t in pitched])
    choirs = [i for i, t in enumerate(pitched) if t.program in CHOIR_PROGRAMS]
    for program in {pitched[i].program for i in choirs}:
        tracks = [i for i in choirs if pitched[i].program == program]
        ranked = sorted(tracks, key=lambda i: (not _SUNG_ROLE.search(pitched[i].name or ""),
                                               -mean_pitch(pitched[i]), i))
        for rank, i in enumerate(ranked):
            voices[i] = min(rank, MAX_VOICES_PER_PROGRAM - 1)
    roles = iter(voices)
    return [None if t.is_drum else f"{t.program}:{next(roles)}" for t in score.tracks]


def mean_pitch(track: symusic.Track) -> float:
    """A track's mean MIDI pitch; 0 for an empty track (so it sorts after every sung voice)."""
    return float(track.notes.numpy()["pitch"].mean()) if track.note_num() else 0.0


def soprano_line(score: symusic.Score) -> symusic.Score:
    """``score`` with only its highest-sounding pitched track (by mean pitch)."""
    out = score.copy()
    pitched = [t for t in out.tracks if not t.is_drum and t.note_num()]
    top = max(pitched, key=mean_pitch)
    out.tracks.clear()
    out.tracks.append(top)
    return out


def voice_ranges(scores: Iterable[symusic.Score]) -> dict[str, tuple[int, int]]:
    """Per voice role, the 5th and 95th percentile pitch of all its notes in ``scores``.

    Percentiles rather than extremes, so one stray note of a real piece does not widen a
    voice's range for good.
    """
    pitches: dict[str, list[np.ndarray]] = {}
    for score in scores:
        for role, track in zip(voice_roles(score), score.tracks, strict=True):
            if role is not None and track.note_num():
                pitches.setdefault(role, []).append(track.notes.numpy()["pitch"].astype(np.int64))
    ranges: dict[str, tuple[int, int]] = {}
    for role, parts in sorted(pitches.items()):
        lo, hi = np.rint(np.percentile(np.concatenate(parts), [5, 95])).astype(np.int64)
        ranges[role] = (int(lo), int(hi))
    return ranges


RANGE_MARGIN = 2  # semitones a voice may go beyond its range before a note counts as outside


def out_of_range_share(score: symusic.Score, ranges: Mapping[str, tuple[int, int]],
                       margin: int = RANGE_MARGIN) -> float:
    """Share of the notes of voices with a known range outside ``[lo - margin, hi + margin]``;
    0.0 when no voice of the score has one."""
    total = outside = 0
    for role, track in zip(voice_roles(score), score.tracks, strict=True):
        if role not in ranges or not track.note_num():
            continue
        lo, hi = ranges[role]
        pitch = track.notes.numpy()["pitch"].astype(np.int64)
        total += len(pitch)
        outside += int(np.count_nonzero((pitch < lo - margin) | (pitch > hi + margin)))
    return outside / total if total else 0.0


__all__ = ["MAX_VOICES_PER_PROGRAM", "RANGE_MARGIN", "is_monophonic_voice", "max_chord", "mean_pitch",
           "out_of_range_share", "soprano_line", "voice_indexes", "voice_name", "voice_ranges", "voice_roles"]
