"""General MIDI instrument names ↔ programs (pretty_midi holds the GM table)."""

from __future__ import annotations

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


def instrument_name(program: int) -> str:
    import pretty_midi

    return str(pretty_midi.program_to_instrument_name(int(program)))
