"""Voices: which part of an ensemble a track is, what it is called, and key names.

A *voice* is a track's place among the tracks that share its General MIDI program, in
score order: the four choir tracks of a chorale are voices 0-3 of program 52 (soprano,
alto, tenor, bass), the two violins of a quartet voices 0 and 1 of program 40. The
rule needs no part names, so a user's MIDI corpus keeps its tracks apart the same way
as music21's scores do: tracks that share a program are told apart by their order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


__all__ = ["MAX_VOICES_PER_PROGRAM", "is_monophonic_voice", "max_chord", "voice_indexes", "voice_name"]
