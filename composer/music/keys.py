"""Keys as ``(mode, tonic)`` pairs: mode 0 major, 1 minor; tonic a pitch class, C = 0.

The pairs are what ``facts.key_index`` estimates. ``parse_key`` reads what a user types,
``key_token_value`` names a key token, ``scale_pitch_classes`` gives the notes a key
allows when it is used as a mask.
"""

from __future__ import annotations

import re

from composer.errors import ConfigError
from composer.music.facts import MAJOR_STEPS, key_name

MINOR_STEPS = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor plus the raised 6th and 7th

KEYS: tuple[tuple[int, int], ...] = tuple((mode, tonic) for mode in (0, 1) for tonic in range(12))

_LETTER = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def key_token_value(mode: int, tonic: int) -> str:
    """The value of a key token: ``D-major``, ``F#-minor`` (a token holds one '_')."""
    return key_name(mode, tonic).replace(" ", "-")


def key_from_name(name: str | None) -> tuple[int, int] | None:
    """``(mode, tonic)`` of a name like ``"D major"`` (a corpus manifest's key), else ``None``."""
    return _parse(name) if name else None


def transpose_key(key: tuple[int, int], semitones: int) -> tuple[int, int]:
    mode, tonic = key
    return mode, (tonic + semitones) % 12


def parse_key(text: str) -> tuple[int, int]:
    """``(mode, tonic)`` of what a user types: ``"D major"``, ``"Bb"``, ``"f# minor"``, ``"Am"``.

    A bare letter is major. Raises ``ConfigError`` naming the accepted forms.
    """
    found = _parse(text)
    if found is None:
        raise ConfigError(f"unknown key '{text}'; write it like 'D major', 'F# minor', 'Bb' or 'Am'")
    return found


def _parse(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*([A-Ga-g])\s*(#|b|-|♯|♭|sharp|flat)?\s*(major|minor|maj|min|m|M)?\s*",
                         text or "")
    if match is None:
        return None
    letter, accidental, mode_word = match.groups()
    tonic = _LETTER[letter.lower()]
    if accidental in ("#", "♯", "sharp"):
        tonic += 1
    elif accidental in ("b", "-", "♭", "flat"):
        tonic -= 1
    if mode_word in ("minor", "min", "m"):
        mode = 1
    elif mode_word in ("major", "maj", "M"):
        mode = 0
    else:
        mode = 0
    return mode, tonic % 12


def scale_pitch_classes(key: tuple[int, int]) -> tuple[int, ...]:
    """The pitch classes of a key's scale (minor: natural, with the raised 6th and 7th)."""
    mode, tonic = key
    return tuple(sorted((tonic + step) % 12 for step in (MINOR_STEPS if mode else MAJOR_STEPS)))


__all__ = ["KEYS", "MINOR_STEPS", "key_from_name", "key_token_value",
           "parse_key", "scale_pitch_classes", "transpose_key"]
