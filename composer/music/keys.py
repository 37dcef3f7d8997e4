"""Keys as ``(mode, tonic)`` pairs: mode 0 major, 1 minor; tonic a pitch class, C = 0.

The pairs are what ``facts.key_index`` estimates. ``parse_key`` reads what a user types,
``key_token_value`` names a key token, ``scale_pitch_classes`` gives the notes a key
allows when it is used as a mask, ``signature_margin`` says how clearly some notes sit in
a key's signature.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from composer.errors import ConfigError
from composer.music.facts import MAJOR_STEPS, key_name, profile_correlation

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


def signature_fifths(mode: int, tonic: int) -> int:
    """Sharps (positive) or flats (negative) of a key's signature, in -5..6."""
    major_tonic = tonic if mode == 0 else (tonic + 3) % 12
    fifths = (major_tonic * 7) % 12
    return fifths - 12 if fifths > 6 else fifths


# Temperley's key profiles (2007), from the Kostka-Payne textbook's excerpts: how often
# each pitch class of C major and C minor sounds in a segment (music21's
# ``analysis.discrete.TemperleyKostkaPayne``). Generation steers with these; ``evaluate``
# hears keys with the Aarden-Essen profiles of ``facts.key_index`` (Essen folk songs), so
# the steering is not the measure. On 763 four-bar windows of validation pieces the two
# agree whether the window keeps its piece's key signature in 0.90 of cases
# (Krumhansl-Kessler's probe-tone profiles: 0.65).
TEMPERLEY_KOSTKA_PAYNE = (
    (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
    (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
)


def signature_margin(durations: np.ndarray, key: tuple[int, int]) -> float:
    """How far the keys that share ``key``'s signature (it and its relative) lead every
    other key in correlation with ``durations`` (12,), the sounding time of each pitch
    class (Temperley's profiles): above 0 when the notes sound in that signature, below 0
    when another key fits them better. 0.0 when nothing sounds."""
    if float(durations.sum()) <= 0:
        return 0.0
    correlation = profile_correlation(durations, TEMPERLEY_KOSTKA_PAYNE)  # (2, 12)
    same = _same_signature(signature_fifths(*key))  # (2, 12)
    return float(correlation[same].max() - correlation[~same].max())


@lru_cache(maxsize=12)
def _same_signature(fifths: int) -> np.ndarray:
    """(2, 12) whether each key (mode, tonic) has ``fifths`` sharps (negative: flats)."""
    return np.array([[signature_fifths(mode, tonic) == fifths for tonic in range(12)] for mode in (0, 1)])


__all__ = ["KEYS", "MINOR_STEPS", "TEMPERLEY_KOSTKA_PAYNE", "key_from_name", "key_token_value", "parse_key",
           "scale_pitch_classes", "signature_fifths", "signature_margin", "transpose_key"]
