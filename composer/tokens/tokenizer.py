"""The token vocabulary: miditok REMI + BPE with style tokens (the only miditok importer).

A piece becomes ``Style_<name>  <REMI tokens, BPE-merged>  EOS``. The REMI stream holds
every part in one sequence (a ``Program`` token before each note), with bars, positions
on a grid of ``positions_per_beat`` steps per beat, tempos, time signatures and coarse
velocities. BPE merges run inside a bar (the stream is cut before every ``Bar`` token),
so a vocabulary entry holds at most one ``Bar`` token, at its start.

Two id spaces exist. *Base* ids number the REMI tokens (``Pitch_60``, ``Bar_None``...);
*ids* (what the model sees) number BPE entries, each a tuple of base ids. The first
``len(base_vocab)`` ids are the base tokens themselves. Everything is saved in one JSON
file, ``tokenizer.json``, that the model bundle carries.

Parts that share a MIDI program are merged into one stream by miditok (the four voices
of a chorale all sing program 52), so a decoded chorale has one choir track holding all
of its notes; voice identity is not kept, the notes are.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    import miditok
    import symusic

    from composer.tokens.grammar import TokenGrammar

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = 1  # bump when the token layout changes; old tokenizer files are refused
ANY_STYLE = "any"
STYLE_PREFIX = "Style_"
PAD_TOKEN = "PAD_None"
EOS_TOKEN = "EOS_None"
BAR_TOKEN = "Bar_None"
CHR_OFFSET = 33  # miditok's CHR_ID_START: base id i is the character chr(i + 33) in BPE
MAX_IDS = 65535  # ids are stored as uint16
BPE_CACHE_WORDS = 200_000  # bar words remembered with their BPE ids

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
        if self.vocab_size > MAX_IDS:
            raise ConfigError(f"vocab_size={self.vocab_size}: at most {MAX_IDS} (ids are uint16)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("tempo_range", "pitch_range"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


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


def _miditok_config(settings: TokenizerSettings, styles: Sequence[str],
                    time_signatures: dict[int, list[int]]) -> miditok.TokenizerConfig:
    from miditok import TokenizerConfig

    specials = ["PAD", "EOS", *(style_token(s) for s in (*styles, ANY_STYLE))]
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
    from miditok import REMI

    settings.validate()
    bad = [s for s in styles if not s or s == ANY_STYLE or not s.replace("_", "").isalnum()]
    if bad:
        raise ConfigError(f"style names {bad} cannot be tokens; use lowercase letters, digits, '_'"
                          f" and not '{ANY_STYLE}'")
    meters = meter_range(time_signature_names, settings.max_numerator, warn=warn)
    return REMI(_miditok_config(settings, sorted(set(styles)), meters))


@dataclass
class Tokenizer:
    """A trained tokenizer: miditok REMI+BPE with the tables composer needs around it."""

    remi: miditok.REMI  # the miditok tokenizer (trained with BPE)
    styles: list[str]  # corpus styles, without "any"
    settings: TokenizerSettings
    sha256: str = ""  # of tokenizer.json, so shards can name the tokenizer they came from
    info: dict[str, Any] = field(default_factory=dict)  # what it was trained on

    # ---- vocabulary -------------------------------------------------------------------

    @cached_property
    def base_vocab(self) -> list[str]:
        """Base token strings by base id."""
        inv = {i: t for t, i in self.remi.vocab.items()}
        return [inv[i] for i in range(len(inv))]

    @cached_property
    def base_ids(self) -> dict[str, int]:
        return dict(self.remi.vocab)

    @property
    def vocab_size(self) -> int:
        """Number of ids (BPE entries) the model sees."""
        return len(self.entries)

    @cached_property
    def entries(self) -> list[tuple[int, ...]]:
        """For each id, the base ids it stands for (``()`` for BPE's bare word marker)."""
        model = self.remi._model
        if model is None:
            return [(i,) for i in range(len(self.base_vocab))]
        learned = self.remi._vocab_learned_bytes_to_tokens
        size = model.get_vocab_size(with_added_tokens=True)
        out = []
        for i in range(size):
            key = model.id_to_token(i)
            if key is None:
                out.append(())
                continue
            out.append(tuple(self.base_ids[t] for t in learned[key]))
        return out

    def check_ids(self) -> None:
        """Base tokens (specials included) must keep their base id as BPE ids; we rely on it."""
        model = self.remi._model
        if model is None:
            return
        moved = [t for b, t in enumerate(self.base_vocab) if model.token_to_id(chr(b + CHR_OFFSET)) != b]
        if moved:
            raise ConfigError(f"tokenizer: BPE renumbered base tokens ({', '.join(moved[:3])}...); "
                              "train the tokenizer again")

    @cached_property
    def entry_strings(self) -> list[str]:
        """Human-readable entries: base tokens joined by spaces."""
        return [" ".join(self.base_vocab[b] for b in e) for e in self.entries]

    @cached_property
    def _entry_flat(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.array([len(e) for e in self.entries], dtype=np.int64)
        flat = np.fromiter((b for e in self.entries for b in e), dtype=np.int64, count=int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return flat, offsets

    @property
    def pad_id(self) -> int:
        return self.base_ids[PAD_TOKEN]

    @property
    def eos_id(self) -> int:
        return self.base_ids[EOS_TOKEN]

    @property
    def bar_id(self) -> int:
        return self.base_ids[BAR_TOKEN]

    @cached_property
    def style_ids(self) -> dict[str, int]:
        """Style name → id of its ``Style_<name>`` token, ``"any"`` included."""
        return {s: self.base_ids[style_token(s)] for s in (*self.styles, ANY_STYLE)}

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset([self.pad_id, self.eos_id, *self.style_ids.values()])

    def style_id(self, style: str) -> int:
        try:
            return self.style_ids[style]
        except KeyError:
            raise ConfigError(f"unknown style '{style}'; this tokenizer knows "
                              f"{', '.join(sorted(self.style_ids))}") from None

    @cached_property
    def grammar(self) -> TokenGrammar:
        """The token grammar (built on first use, well under a second)."""
        from composer.tokens.grammar import TokenGrammar

        return TokenGrammar.build(self.base_vocab, self.entries, self.settings.positions_per_beat)

    # ---- pitch tables (transposition, controls) ------------------------------------

    @cached_property
    def _pitch_tables(self) -> tuple[np.ndarray, np.ndarray]:
        pitch_of = np.full(len(self.base_vocab), -1, dtype=np.int64)  # base id → pitch
        token_of = np.full(128, -1, dtype=np.int64)  # pitch → base id
        for i, tok in enumerate(self.base_vocab):
            if tok.startswith("Pitch_"):
                pitch_of[i] = int(tok[6:])
                token_of[pitch_of[i]] = i
        return pitch_of, token_of

    @cached_property
    def _is_duration(self) -> np.ndarray:
        return np.array([t.startswith("Duration_") for t in self.base_vocab], dtype=bool)

    # ---- encoding -----------------------------------------------------------------

    def encode_base(self, score: symusic.Score) -> np.ndarray:
        """The REMI base ids of a score, ending after its last note (no style, no EOS).

        Raises ``InputFileError`` when no note survives (all outside the pitch range).
        """
        seq = self.remi.encode(score, encode_ids=False)
        ids = np.asarray(seq.ids, dtype=np.int64)
        last = np.flatnonzero(self._is_duration[ids]) if len(ids) else np.empty(0, dtype=np.int64)
        if len(last) == 0:
            lo, hi = self.settings.pitch_range
            raise InputFileError(f"no pitched notes between MIDI pitches {lo} and {hi} to tokenize")
        return ids[: last[-1] + 1]

    def _words(self, base: np.ndarray) -> list[str]:
        """Base ids as BPE words: one string per bar (cut before every Bar token)."""
        cuts = np.flatnonzero(base == self.bar_id)
        cuts = cuts[cuts > 0]
        chars = (base + CHR_OFFSET).astype("<u4").tobytes().decode("utf-32-le")  # chr() of each
        bounds = [0, *cuts.tolist(), len(base)]
        return [chars[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    def bpe(self, base: np.ndarray) -> np.ndarray:
        """BPE-merge base ids (REMI tokens only, no specials) into ids."""
        return self.bpe_many([base])[0]

    def bpe_many(self, bases: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``bpe`` of several sequences. Bars are merged one by one, through a cache."""
        if self.remi._model is None:
            return [np.asarray(b, dtype=np.int64) for b in bases]
        cache, tokenize = self._bpe_cache, self._bpe_word
        out = []
        for base in bases:
            ids: list[int] = []
            for word in self._words(np.asarray(base, dtype=np.int64)):
                merged = cache.get(word)
                if merged is None:
                    if len(cache) >= BPE_CACHE_WORDS:
                        cache.clear()
                    merged = cache[word] = tokenize(word)
                ids.extend(merged)
            out.append(self._drop_empty(np.asarray(ids, dtype=np.int64)))
        return out

    @cached_property
    def _bpe_cache(self) -> dict[str, list[int]]:
        return {}

    @cached_property
    def _bpe_word(self) -> Callable[[str], list[int]]:
        """One bar word → ids. Calls the BPE model directly when the pipeline around it only
        adds the word marker (2-3x faster than ``Tokenizer.encode``); same ids either way."""
        from tokenizers import pre_tokenizers

        hf = self.remi._model
        pre = hf.pre_tokenizer
        if hf.normalizer is None and (pre is None or (
                isinstance(pre, pre_tokenizers.Metaspace) and pre.prepend_scheme == "always")):
            prefix = "" if pre is None else pre.replacement
            model = hf.model
            return lambda word: [t.id for t in model.tokenize(prefix + word)]
        return lambda word: hf.encode([word], is_pretokenized=True).ids

    def _drop_empty(self, ids: np.ndarray) -> np.ndarray:
        """Without BPE's bare word marker, should it stand alone (it stands for no token)."""
        _, offsets = self._entry_flat
        return ids[offsets[ids + 1] > offsets[ids]]

    def encode_score(self, score: symusic.Score, style: str, *, eos: bool = True) -> list[int]:
        """``[Style_<style>, ...REMI+BPE ids..., EOS]``; ``eos=False`` for a prompt to continue."""
        head = [self.style_id(style)]
        body = self.bpe(self.encode_base(score)).tolist()
        return head + body + ([self.eos_id] if eos else [])

    def transpose_base(self, base: np.ndarray, semitones: int) -> np.ndarray | None:
        """Base ids with every pitch moved; ``None`` if a note would leave the pitch range."""
        pitch_of, token_of = self._pitch_tables
        base = np.asarray(base, dtype=np.int64)
        if semitones == 0:
            return base.copy()
        is_pitch = pitch_of[base] >= 0
        moved = pitch_of[base[is_pitch]] + semitones
        lo, hi = self.settings.pitch_range
        if len(moved) and (moved.min() < lo or moved.max() > hi):
            return None
        out = base.copy()
        out[is_pitch] = token_of[moved]
        return out

    def transpose_ids(self, ids: Sequence[int] | np.ndarray, semitones: int) -> np.ndarray | None:
        """Ids transposed by ``semitones`` and BPE-merged again (the length may change).

        Special tokens stay where they are. ``None`` when a note would leave the pitch
        range. Training shards are transposed ahead of time; this is for prompts.
        """
        ids = self.valid_ids(ids)
        out: list[np.ndarray] = []
        run: list[int] = []
        for i in [*ids.tolist(), -1]:
            if i >= 0 and i not in self.special_ids:
                run.append(i)
                continue
            if run:
                moved = self.transpose_base(self.expand(run), semitones)
                if moved is None:
                    return None
                out.append(self.bpe(moved))
                run = []
            if i >= 0:
                out.append(np.array([i], dtype=np.int64))
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    # ---- decoding -----------------------------------------------------------------

    def valid_ids(self, ids: Any) -> np.ndarray:
        """Any id input (list, array, tensor) as a flat int64 array; ids outside the vocabulary dropped."""
        try:
            arr = np.asarray(ids, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            return np.empty(0, dtype=np.int64)
        arr = arr[np.isfinite(arr)]
        return arr[(arr >= 0) & (arr < self.vocab_size)].astype(np.int64)

    def expand(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Ids → base ids (vectorised)."""
        flat, offsets = self._entry_flat
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.empty(0, dtype=np.int64)
        starts, ends = offsets[ids], offsets[ids + 1]
        lengths = ends - starts
        # index of every base token: start of its entry + position inside it
        positions = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return flat[np.repeat(starts, lengths) + positions]

    def tokens(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Ids as base token strings, for reading."""
        return [self.base_vocab[b] for b in self.expand(self.valid_ids(ids))]

    def decode_ids(self, ids: Any) -> symusic.Score:
        """Ids → a score. Never raises: what the grammar does not allow is skipped.

        Decoding stops at the first EOS. Tokens that do not fit the REMI grammar where
        they stand (a pitch without a duration, a second style token...) are dropped, so
        any id sequence, including a model's worst output, gives a valid (maybe empty) score.
        """
        import symusic

        try:
            base = self.expand(self.valid_ids(ids))
            kept = self.grammar.repair_base(base)
            return self._decode_base(kept)
        except Exception:  # never raise on model output; an empty score says it all
            log.warning("decoding failed; returning an empty score", exc_info=True)
            score = symusic.Score(self.remi.time_division)
            score.tempos.append(symusic.Tempo(0, 120.0))
            score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
            return score

    def _decode_base(self, base: np.ndarray) -> symusic.Score:
        from miditok import TokSequence

        remi_only = [int(b) for b in base if int(b) not in self.special_ids]
        tokens = [self.base_vocab[b] for b in remi_only]
        return self.remi.decode(TokSequence(tokens=tokens, ids=remi_only))

    # ---- saving -------------------------------------------------------------------

    def save(self, out_dir: Path) -> Path:
        """Write ``out_dir/tokenizer.json`` (atomically) and return its path."""
        path = out_dir / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        extra = {"composer": {"format": FORMAT_VERSION, "styles": self.styles,
                              "settings": asdict(self.settings), "info": self.info}}
        self.remi.save(tmp, additional_attributes=extra)
        tmp.replace(path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        return path


def train_bpe(remi: miditok.REMI, sequences: Iterable[np.ndarray], vocab_size: int) -> None:
    """Train miditok's BPE on base-id sequences (each cut into bar words, as at encoding)."""
    helper = Tokenizer(remi=remi, styles=[], settings=TokenizerSettings())
    words = [helper._words(np.asarray(s, dtype=np.int64)) for s in sequences]
    words = [w for w in words if w]
    if not words:
        raise ConfigError("no training sequences for BPE; is the train split empty?")
    if vocab_size <= len(remi.vocab):
        raise ConfigError(f"--vocab-size {vocab_size} must exceed the {len(remi.vocab)} base tokens")
    with _quiet_native_output():  # the Rust trainer draws its own progress bar
        remi.train(vocab_size=vocab_size, model="BPE", iterator=words)


@contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null meanwhile (library code never prints)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def tokenizer_path(path: Path) -> Path:
    """The JSON file for a tokenizer given as a folder or a file."""
    return path / TOKENIZER_FILE if path.is_dir() else path


def load_tokenizer(path: Path | str) -> Tokenizer:
    """Load a tokenizer saved by ``composer tokenizer train`` (a folder or its JSON file)."""
    from miditok import REMI

    file = tokenizer_path(Path(path))
    if not file.is_file():
        raise ConfigError(f"{path}: no {TOKENIZER_FILE}; train one with "
                          f"'composer tokenizer train CORPUS_DIR -o {path}'")
    raw = file.read_bytes()
    try:
        data = json.loads(raw)
        ours = data["composer"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ConfigError(f"{file}: not a composer tokenizer file; train it again") from None
    if not isinstance(ours, dict):
        raise ConfigError(f"{file}: not a composer tokenizer file; train it again")
    if ours.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{file}: tokenizer format {ours.get('format')}, this composer reads "
                          f"{FORMAT_VERSION}; train the tokenizer again")
    try:
        remi = REMI(params=file)
    except Exception as exc:
        raise ConfigError(f"{file}: miditok cannot load it ({exc})") from None
    try:
        tok = Tokenizer(remi=remi, styles=[str(s) for s in ours["styles"]],
                        settings=TokenizerSettings.from_dict(ours.get("settings", {})),
                        sha256=hashlib.sha256(raw).hexdigest(), info=dict(ours.get("info", {})))
        tok.check_ids()
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{file}: a damaged composer tokenizer file; train it again") from None
    if tok.vocab_size > MAX_IDS + 1:
        raise ConfigError(f"{file}: {tok.vocab_size} ids do not fit uint16 shards")
    return tok


def encode_score(tokenizer: Tokenizer, score: symusic.Score, style: str, *, eos: bool = True) -> list[int]:
    """Module-level form of ``Tokenizer.encode_score``."""
    return tokenizer.encode_score(score, style, eos=eos)


def decode_ids(tokenizer: Tokenizer, ids: Any) -> symusic.Score:
    """Module-level form of ``Tokenizer.decode_ids`` (never raises)."""
    return tokenizer.decode_ids(ids)
