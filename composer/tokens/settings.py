"""How the REMI vocabulary is laid out: ``TokenizerSettings``, the style tokens, the meters
it holds, and the miditok configuration they make.

Every meter of the training corpus (plus the common ones) gets a ``TimeSig`` token, so a
piece in 5/4 is written in 5/4; meters whose denominators miditok cannot place on its
grid are left out with a warning.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from composer.errors import ConfigError
from composer.music.keys import KEYS, key_token_value

log = logging.getLogger(__name__)

MAX_IDS = 65535  # ids are stored as uint16

if TYPE_CHECKING:
    import miditok


ANY_STYLE = "any"


STYLE_PREFIX = "Style_"


KEY_PREFIX = "Key_"


PAD_TOKEN = "PAD_None"


EOS_TOKEN = "EOS_None"


# Meters always in the vocabulary, whatever the training corpus holds.
COMMON_TIME_SIGNATURES = (
    "2/2", "3/2", "4/2", "2/4", "3/4", "4/4", "5/4", "6/4", "3/8", "6/8", "9/8", "12/8",
)


SUPPORTED_DENOMINATORS = (1, 2, 4, 8, 16)


@dataclass
class TokenizerSettings:
    """How scores become base tokens, and how big the BPE vocabulary is."""

    vocab_size: int = 4096  # BPE vocabulary size, base tokens and specials included
    positions_per_beat: int = 24  # onset grid per beat: 24 holds 16ths, 32nds and triplets
    long_note_beats: int = 4  # durations up to this many beats use the fine grid ...
    max_note_beats: int = 12  # ... longer ones a quarter-beat grid, up to this many beats
    num_velocities: int = 8  # coarse velocity bins over 1..127
    num_tempos: int = 24  # tempo bins, log-spaced over tempo_range
    tempo_range: tuple[int, int] = (40, 240)  # quarter notes per minute
    pitch_range: tuple[int, int] = (21, 108)  # lowest and highest MIDI pitch, inclusive
    max_numerator: int = 16  # meters with a bigger numerator are left out of the vocabulary
    bpe_transpositions: int = 2  # random transposed copies of each piece added to BPE training
    seed: int = 0  # for those transpositions
    voices: bool = True  # tracks sharing a program keep apart as voices (own Program tokens)
    keys: bool = True  # a Key_<key> token after the style token (24 keys and Key_any)

    def validate(self) -> None:
        if not 2 <= self.positions_per_beat <= 96:
            raise ConfigError(f"positions_per_beat={self.positions_per_beat}: use 2..96 (24 is usual)")
        if not 0 < self.long_note_beats < self.max_note_beats <= 64:
            raise ConfigError("need 0 < long_note_beats < max_note_beats <= 64")
        lo, hi = self.pitch_range
        if not 0 <= lo < hi <= 127:
            raise ConfigError(f"pitch_range={self.pitch_range}: need 0 <= low < high <= 127")
        if not 1 <= self.num_velocities <= 127:
            raise ConfigError(f"num_velocities={self.num_velocities}: use 1..127")
        if not 2 <= self.vocab_size <= MAX_IDS:
            raise ConfigError(f"vocab_size={self.vocab_size}: use 2..{MAX_IDS} (ids are uint16)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("tempo_range", "pitch_range"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


def key_token(key: tuple[int, int]) -> str:
    """``Key_D-major`` for ``(0, 2)``."""
    return KEY_PREFIX + key_token_value(*key)


def style_token(style: str) -> str:
    """``Style_<name>``; underscores in the name become '-' (a miditok token has one '_')."""
    return STYLE_PREFIX + style.replace("_", "-")


def _parse_meter(name: str) -> tuple[int, int] | None:
    try:
        num, den = (int(x) for x in name.split("/"))
    except ValueError:
        return None
    return (num, den) if num > 0 and den > 0 else None


def meter_range(names: Iterable[str], max_numerator: int, *, warn: bool = True) -> dict[int, list[int]]:
    """miditok's ``time_signature_range``: the common meters plus ``names``, where supported."""
    meters: set[tuple[int, int]] = set()
    refused: list[str] = []
    for name in (*COMMON_TIME_SIGNATURES, *names):
        meter = _parse_meter(name)
        if meter is None or meter[1] not in SUPPORTED_DENOMINATORS or meter[0] > max_numerator:
            refused.append(name)
            continue
        meters.add(meter)
    if refused and warn:
        log.warning("time signatures %s are left out of the vocabulary (denominator not in %s or "
                    "numerator above %d); their bars are counted in the meter before them, their "
                    "notes are kept", ", ".join(sorted(set(refused))), SUPPORTED_DENOMINATORS,
                    max_numerator)
    out: dict[int, list[int]] = {}
    for num, den in sorted(meters, key=lambda m: (m[1], m[0])):
        out.setdefault(den, []).append(num)
    return out


def import_miditok() -> Any:
    """The ``miditok`` module, imported without its torch datasets.

    Where torch is installed, ``import miditok`` imports it too (1.2–1.5 s on 2 cores) for
    ``miditok.pytorch_data``, which composer never uses; writing music needs no torch. The
    block lasts only for this import, so ``import miditok.pytorch_data`` still works later.
    """
    if "miditok" not in sys.modules and "torch" not in sys.modules:
        sys.modules["miditok.pytorch_data"] = None  # type: ignore[assignment]  # import → ImportError
        try:
            import miditok
        finally:
            del sys.modules["miditok.pytorch_data"]
    import miditok

    return miditok


def _miditok_config(settings: TokenizerSettings, styles: Sequence[str],
                    time_signatures: dict[int, list[int]]) -> miditok.TokenizerConfig:
    TokenizerConfig = import_miditok().TokenizerConfig

    specials = ["PAD", "EOS", *(style_token(s) for s in (*styles, ANY_STYLE))]
    if settings.keys:
        specials += [key_token(k) for k in KEYS] + [KEY_PREFIX + ANY_STYLE]
    lo, hi = settings.pitch_range
    return TokenizerConfig(
        pitch_range=(lo, hi + 1),
        beat_res={(0, settings.long_note_beats): settings.positions_per_beat,
                  (settings.long_note_beats, settings.max_note_beats): 4},
        num_velocities=settings.num_velocities,
        special_tokens=specials,
        encode_ids_split="bar",
        use_velocities=True,
        use_tempos=True,
        num_tempos=settings.num_tempos,
        tempo_range=settings.tempo_range,
        log_tempos=True,
        use_time_signatures=True,
        time_signature_range=time_signatures,
        use_programs=True,
        one_token_stream_for_programs=True,
        programs=list(range(128)),  # drums are not music composer writes
        use_pitchdrum_tokens=False,
        remove_duplicated_notes=False,  # a unison of two voices stays two notes
    )


def new_remi(settings: TokenizerSettings, styles: Sequence[str],
             time_signature_names: Iterable[str] = (), *, warn: bool = True) -> miditok.REMI:
    """An untrained miditok REMI tokenizer with our configuration and style tokens."""
    REMI = import_miditok().REMI

    settings.validate()
    bad = [s for s in styles if not s or s == ANY_STYLE or not s.replace("_", "").isalnum()]
    if bad:
        raise ConfigError(f"style names {bad} cannot be tokens; use lowercase letters, digits, '_'"
                          f" and not '{ANY_STYLE}'")
    meters = meter_range(time_signature_names, settings.max_numerator, warn=warn)
    return REMI(_miditok_config(settings, sorted(set(styles)), meters))
