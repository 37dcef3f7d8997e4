"""General MIDI instruments: one table of how each program is named and written, and names → programs.

``instrument_for(program)`` gives the part name, abbreviation, family, preferred clef and
whether it plays chords; ``program_for(name)`` reads what a user types (``violin``,
``'Acoustic Grand Piano'``, ``40``), with pretty_midi's GM names as the fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import ConfigError

ALIASES = {"piano": 0, "choir": 52, "voice": 52, "fiddle": 40, "strings": 48, "flute": 73,
           "guitar": 24, "organ": 19, "harpsichord": 6, "cello": 42, "violin": 40, "viola": 41}


def program_for(name: str) -> int:
    """A GM program (0-127) for ``"violin"``, ``"Acoustic Grand Piano"`` or ``"40"``."""
    import pretty_midi

    text = name.strip()
    if text.isdigit() and 0 <= int(text) <= 127:
        return int(text)
    if text.lower() in ALIASES:
        return ALIASES[text.lower()]
    try:
        return int(pretty_midi.instrument_name_to_program(text.title()))
    except ValueError:
        pass
    wanted = text.lower()
    for program in range(128):
        if wanted in pretty_midi.program_to_instrument_name(program).lower():
            return program
    raise ConfigError(f"unknown instrument '{name}'; use a General MIDI name such as violin, "
                      "'Acoustic Grand Piano', choir, flute, or a program number 0-127")


@dataclass(frozen=True)
class Instrument:
    """How a General MIDI program is written."""

    name: str  # part name printed before the first system
    abbreviation: str  # printed before later systems
    family: str  # "voice", "strings", "keyboard", "winds", "brass", "plucked", "other"
    clef: str  # preferred clef: treble, treble8vb, alto, tenor, bass or bass8vb
    chords: bool  # plays chords (notes with the same start and end share a stem)


_GM_RANGES: list[tuple[range, Instrument]] = [
    (range(0, 6), Instrument("Piano", "Pno.", "keyboard", "treble", True)),
    (range(6, 7), Instrument("Harpsichord", "Hpscd.", "keyboard", "treble", True)),
    (range(7, 8), Instrument("Clavinet", "Clav.", "keyboard", "treble", True)),
    (range(8, 16), Instrument("", "", "keyboard", "treble", True)),
    (range(16, 21), Instrument("Organ", "Org.", "keyboard", "treble", True)),
    (range(21, 24), Instrument("Accordion", "Acc.", "keyboard", "treble", True)),
    (range(24, 32), Instrument("Guitar", "Gtr.", "plucked", "treble8vb", True)),
    (range(32, 40), Instrument("Bass", "B.", "plucked", "bass", False)),
    (range(40, 41), Instrument("Violin", "Vln.", "strings", "treble", False)),
    (range(41, 42), Instrument("Viola", "Vla.", "strings", "alto", False)),
    (range(42, 43), Instrument("Violoncello", "Vc.", "strings", "bass", False)),
    (range(43, 44), Instrument("Contrabass", "Cb.", "strings", "bass8vb", False)),
    (range(44, 46), Instrument("Strings", "Str.", "strings", "treble", False)),
    (range(46, 47), Instrument("Harp", "Hp.", "keyboard", "treble", True)),
    (range(47, 48), Instrument("Timpani", "Timp.", "other", "bass", False)),
    (range(48, 52), Instrument("Strings", "Str.", "strings", "treble", False)),
    (range(52, 55), Instrument("Choir", "Ch.", "voice", "treble", False)),
    (range(56, 57), Instrument("Trumpet", "Tpt.", "brass", "treble", False)),
    (range(57, 58), Instrument("Trombone", "Tbn.", "brass", "bass", False)),
    (range(58, 59), Instrument("Tuba", "Tba.", "brass", "bass", False)),
    (range(59, 60), Instrument("Trumpet", "Tpt.", "brass", "treble", False)),
    (range(60, 61), Instrument("Horn", "Hn.", "brass", "treble", False)),
    (range(61, 64), Instrument("Brass", "Br.", "brass", "treble", False)),
    (range(64, 65), Instrument("Soprano Saxophone", "S. Sax.", "winds", "treble", False)),
    (range(65, 66), Instrument("Alto Saxophone", "A. Sax.", "winds", "treble", False)),
    (range(66, 67), Instrument("Tenor Saxophone", "T. Sax.", "winds", "treble8vb", False)),
    (range(67, 68), Instrument("Baritone Saxophone", "Bar. Sax.", "winds", "bass", False)),
    (range(68, 69), Instrument("Oboe", "Ob.", "winds", "treble", False)),
    (range(69, 70), Instrument("English Horn", "E. Hn.", "winds", "treble", False)),
    (range(70, 71), Instrument("Bassoon", "Bsn.", "winds", "bass", False)),
    (range(71, 72), Instrument("Clarinet", "Cl.", "winds", "treble", False)),
    (range(72, 73), Instrument("Piccolo", "Picc.", "winds", "treble", False)),
    (range(73, 74), Instrument("Flute", "Fl.", "winds", "treble", False)),
    (range(74, 75), Instrument("Recorder", "Rec.", "winds", "treble", False)),
    (range(75, 80), Instrument("", "", "winds", "treble", False)),
    (range(110, 111), Instrument("Fiddle", "Fdl.", "strings", "treble", False)),
    (range(109, 110), Instrument("Bagpipe", "Bagp.", "winds", "treble", False)),
]


_GENERIC = Instrument("", "", "other", "treble", True)


VOICE_TYPES: list[tuple[str, str, str, int]] = [  # name, abbreviation, clef, lowest mean pitch
    ("Soprano", "S.", "treble", 67),
    ("Alto", "A.", "treble", 60),
    ("Tenor", "T.", "treble8vb", 53),
    ("Bass", "B.", "bass", 0),
]


_GENERIC_NAME = re.compile(r"^\s*(track|untitled|midi|channel|staff|part|instrument|inst)?"
                           r"[\s_#-]*\d*\s*$", re.IGNORECASE)


def instrument_for(program: int) -> Instrument:
    for programs, instrument in _GM_RANGES:
        if program in programs:
            return instrument
    return _GENERIC


def meaningful_name(name: str) -> str | None:
    """The track name if it names something ("Soprano", "Violin I"), else None."""
    text = " ".join(name.split())
    if not text or _GENERIC_NAME.match(text) or len(text) > 40:
        return None
    return text
