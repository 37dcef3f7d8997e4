"""The token vocabulary: miditok REMI + BPE with style tokens (with ``bpe``, the only miditok importer).

A piece becomes ``Style_<name>  <REMI tokens, BPE-merged>  EOS``. The REMI stream holds
every part in one sequence (a ``Program`` token before each note), with bars, positions
on a grid of ``positions_per_beat`` steps per beat, tempos, time signatures and coarse
velocities. BPE merges run inside a bar (the stream is cut before every ``Bar`` token),
so a vocabulary entry holds at most one ``Bar`` token, at its start.

Two id spaces exist. *Base* ids number the REMI tokens (``Pitch_60``, ``Bar_None``...);
*ids* (what the model sees) number BPE entries, each a tuple of base ids. The first
``len(base_vocab)`` ids are the base tokens themselves. Everything is saved in one JSON
file, ``tokenizer.json``, that the model bundle carries.

A piece opens with ``Style_<name> Key_<key>`` (format 2; the key token is the piece's
estimated key, transposed with it, or ``Key_any``). Tracks that share a MIDI program
stay apart as *voices* (``composer.music.voices``): voice 0 of a program is written with
its own ``Program`` token, voices 1, 2… with ``Program`` tokens of programs the training
corpus does not use (the ``voice_programs`` table, saved with the tokenizer). So the
four choir tracks of a chorale are four token programs, and decoding gives back four
tracks on the choir's program, named Soprano, Alto, Tenor and Bass. Format 1 files (one
merged track per program, no key token) still load.

BPE itself (training, the entry table, the cached bar-word encoder: everything that
touches miditok's private attributes) lives in ``composer.tokens.bpe``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.errors import ConfigError, DecodingError, InputFileError
from composer.tokens.bpe import BAR_TOKEN, BarBpe, check_base_ids, learned_entries

if TYPE_CHECKING:
    import miditok
    import symusic

    from composer.tokens.grammar import TokenGrammar
from composer.music.keys import KEYS
from composer.music.voices import CHOIR_PROGRAMS, max_chord, mean_pitch, voice_indexes, voice_name
from composer.tokens.settings import (
    ANY_STYLE,
    EOS_TOKEN,
    KEY_PREFIX,
    MAX_IDS,
    PAD_TOKEN,
    TokenizerSettings,
    import_miditok,
    key_token,
    style_token,
)

TOKENIZER_FILE = "tokenizer.json"


FORMAT_VERSION = 2  # bump when the token layout changes; old tokenizer files are refused
READABLE_FORMATS = (1, 2)  # 1: no voices, no key token




@dataclass
class Tokenizer:
    """A trained tokenizer: miditok REMI+BPE with the tables composer needs around it."""

    remi: miditok.REMI  # the miditok tokenizer (trained with BPE)
    styles: list[str]  # corpus styles, without "any"
    settings: TokenizerSettings
    sha256: str = ""  # of tokenizer.json, so shards can name the tokenizer they came from
    info: dict[str, Any] = field(default_factory=dict)  # what it was trained on
    # (program, voice) → the program its notes are written with in tokens; voice 0 of a
    # program not listed is written as itself
    voice_programs: dict[tuple[int, int], int] = field(default_factory=dict)

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
        return learned_entries(self.remi, self.base_ids)

    def check_ids(self) -> None:
        """Base tokens (specials included) must keep their base id as BPE ids; we rely on it."""
        check_base_ids(self.remi, self.base_vocab)

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
        keys = [*self.key_ids.values(), self.any_key_id] if self.settings.keys else []
        return frozenset([self.pad_id, self.eos_id, *self.style_ids.values(), *keys])

    def style_id(self, style: str) -> int:
        try:
            return self.style_ids[style]
        except KeyError:
            raise ConfigError(f"unknown style '{style}'; this tokenizer knows "
                              f"{', '.join(sorted(self.style_ids))}") from None

    # ---- keys and voices ---------------------------------------------------------------

    @cached_property
    def key_ids(self) -> dict[tuple[int, int], int]:
        """(mode, tonic) → id of its ``Key_`` token; empty for a tokenizer without keys."""
        if not self.settings.keys:
            return {}
        return {k: self.base_ids[key_token(k)] for k in KEYS}

    @property
    def any_key_id(self) -> int | None:
        return self.base_ids.get(KEY_PREFIX + ANY_STYLE)

    @property
    def prefix_len(self) -> int:
        """Tokens before the music: the style, and the key where the format has one."""
        return 2 if self.settings.keys else 1

    def prefix(self, style: str, key: tuple[int, int] | None = None) -> list[int]:
        """``[Style_<style>]`` or ``[Style_<style>, Key_<key>]`` (``Key_any`` for ``None``)."""
        head = [self.style_id(style)]
        if self.settings.keys:
            head.append(self.key_ids[key] if key is not None else int(self.any_key_id))
        return head

    def key_of_id(self, token_id: int) -> tuple[int, int] | None:
        """The key a ``Key_`` id stands for; ``None`` for ``Key_any`` or another id."""
        for key, i in self.key_ids.items():
            if i == token_id:
                return key
        return None

    @cached_property
    def _voice_of_token_program(self) -> dict[int, tuple[int, int]]:
        return {t: pv for pv, t in self.voice_programs.items()}

    def token_program(self, program: int, voice: int) -> int:
        """The program voice ``voice`` of ``program`` is written with in tokens."""
        for v in range(voice, 0, -1):  # a voice the corpus never had shares the highest known
            if (program, v) in self.voice_programs:
                return self.voice_programs[(program, v)]
        return program

    def voice_of(self, token_program: int) -> tuple[int, int]:
        """(General MIDI program, voice) of a token program."""
        return self._voice_of_token_program.get(token_program, (token_program, 0))

    def token_programs(self, programs: Iterable[int]) -> set[int]:
        """Every token program that writes one of ``programs`` (their voices included)."""
        wanted = {int(p) for p in programs}
        return wanted | {t for (p, _), t in self.voice_programs.items() if p in wanted}

    def voice_limits(self) -> dict[int, int]:
        """Token program → most notes its voice starts at one onset (only voices with a limit)."""
        if not self.settings.voices:
            return {}  # format 1: one track holds every voice of a program, chords and all
        limits = {t: max_chord(self.voice_of(t)[0]) for t in range(128)}
        return {t: n for t, n in limits.items() if n > 0}

    def to_token_programs(self, score: symusic.Score) -> symusic.Score:
        """``score`` with its tracks on their token programs (a copy; format 1: ``score`` itself)."""
        if not self.settings.voices:
            return score
        out = score.copy()
        pitched = [t for t in out.tracks if not t.is_drum]
        voices = voice_indexes([t.program for t in pitched], [t.name for t in pitched])
        for track, voice in zip(pitched, voices, strict=True):
            track.program = self.token_program(track.program, voice)
        return out

    def from_token_programs(self, score: symusic.Score) -> symusic.Score:
        """Tracks back on their General MIDI programs, named by voice, in score order (in place)."""
        if not self.settings.voices:
            return score
        from composer.music.instruments import instrument_for

        groups: dict[int, list[tuple[int, symusic.Track]]] = {}
        for track in score.tracks:
            program, voice = self.voice_of(track.program)
            groups.setdefault(program, []).append((voice, track))
        tracks = []
        for program in sorted(groups):  # GM order is score order: violin, viola, cello
            group = groups[program]
            if program in CHOIR_PROGRAMS:
                # singers are named by register, highest first: corpora order their parts
                # differently (Monteverdi's fifth part is a second soprano, Palestrina's a tenor)
                group.sort(key=lambda vt: -mean_pitch(vt[1]))
                named = [(rank, len(group), track) for rank, (_, track) in enumerate(group)]
            else:
                group.sort(key=lambda vt: vt[0])
                count = group[-1][0] + 1
                named = [(voice, count, track) for voice, track in group]
            for index, count, track in named:
                track.program = program
                track.name = voice_name(instrument_for(program).name, program, index, count)
                tracks.append(track)
        score.tracks.clear()
        for track in tracks:
            score.tracks.append(track)
        return score

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
        seq = self.remi.encode(self.to_token_programs(score), encode_ids=False)
        ids = np.asarray(seq.ids, dtype=np.int64)
        last = np.flatnonzero(self._is_duration[ids]) if len(ids) else np.empty(0, dtype=np.int64)
        if len(last) == 0:
            lo, hi = self.settings.pitch_range
            raise InputFileError(f"no pitched notes between MIDI pitches {lo} and {hi} to tokenize")
        return ids[: last[-1] + 1]

    def bpe(self, base: np.ndarray) -> np.ndarray:
        """BPE-merge base ids (REMI tokens only, no specials) into ids."""
        return self.bpe_many([base])[0]

    def bpe_many(self, bases: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``bpe`` of several sequences. Bars are merged one by one, through a cache."""
        return self._bpe.encode_many(bases)

    @cached_property
    def _bpe(self) -> BarBpe:
        return BarBpe(self.remi, self.bar_id, np.array([len(e) for e in self.entries]))

    def encode_score(self, score: symusic.Score, style: str, *, key: tuple[int, int] | None = None,
                     eos: bool = True) -> list[int]:
        """``[Style_<style>, Key_<key>, ...REMI+BPE ids..., EOS]``; ``eos=False`` for a prompt to
        continue. ``key=None`` writes ``Key_any`` (and nothing in format 1)."""
        head = self.prefix(style, key)
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

    def decode_ids(self, ids: Any, token_programs: bool = False) -> symusic.Score:
        """Ids → a score. Ill-formed ids are repaired, not refused.

        Decoding stops at the first EOS. Ids outside the vocabulary, and tokens that do
        not fit the REMI grammar where they stand (a pitch without a duration, a second
        style token...), are dropped by ``TokenGrammar.repair_base``, so any id sequence,
        including a model's worst output, gives a valid score (empty when no complete
        note survives). What remains is grammatical, so miditok refusing it would be a
        bug here or in miditok: that raises ``DecodingError`` instead of passing for a
        silent piece. ``token_programs`` leaves each track on its token program (one per
        voice, in the tokens' order) instead of naming voices on General MIDI programs.
        """
        base = self.expand(self.valid_ids(ids))
        return self._decode_base(self.grammar.repair_base(base), token_programs)

    def _decode_base(self, base: np.ndarray, token_programs: bool = False) -> symusic.Score:
        TokSequence = import_miditok().TokSequence

        remi_only = [int(b) for b in base if int(b) not in self.special_ids]
        tokens = [self.base_vocab[b] for b in remi_only]
        try:
            score = self.remi.decode(TokSequence(tokens=tokens, ids=remi_only))
        except Exception as exc:  # re-raised, named: the grammar let through what miditok refuses
            head = " ".join(tokens[:8]) + (" ..." if len(tokens) > 8 else "")
            raise DecodingError(
                f"miditok could not decode {len(tokens)} grammatical tokens ({head}): "
                f"{type(exc).__name__}: {exc}; this is a bug, please report it") from exc
        return score if token_programs else self.from_token_programs(score)

    # ---- saving -------------------------------------------------------------------

    def save(self, out_dir: Path) -> Path:
        """Write ``out_dir/tokenizer.json`` (atomically) and return its path."""
        path = out_dir / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        extra = {"composer": {"format": FORMAT_VERSION, "styles": self.styles,
                              "settings": asdict(self.settings), "info": self.info,
                              "voice_programs": [[p, v, t] for (p, v), t
                                                 in sorted(self.voice_programs.items())]}}
        self.remi.save(tmp, additional_attributes=extra)
        tmp.replace(path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        return path


def tokenizer_path(path: Path) -> Path:
    """The JSON file for a tokenizer given as a folder or a file."""
    return path / TOKENIZER_FILE if path.is_dir() else path


def load_tokenizer(path: Path | str) -> Tokenizer:
    """Load a tokenizer saved by ``composer tokenizer train`` (a folder or its JSON file)."""
    REMI = import_miditok().REMI

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
    if ours.get("format") not in READABLE_FORMATS:
        raise ConfigError(f"{file}: tokenizer format {ours.get('format')}, this composer reads "
                          f"{', '.join(map(str, READABLE_FORMATS))}; train the tokenizer again")
    try:
        remi = REMI(params=file)
    except Exception as exc:
        raise ConfigError(f"{file}: miditok cannot load it ({exc})") from None
    try:
        settings = TokenizerSettings.from_dict(ours.get("settings", {}))
        if ours["format"] == 1:
            settings.voices = settings.keys = False
        voice_programs = {(int(p), int(v)): int(t) for p, v, t in ours.get("voice_programs", [])}
        tok = Tokenizer(remi=remi, styles=[str(s) for s in ours["styles"]], settings=settings,
                        sha256=hashlib.sha256(raw).hexdigest(), info=dict(ours.get("info", {})),
                        voice_programs=voice_programs)
        tok.check_ids()
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{file}: a damaged composer tokenizer file; train it again") from None
    if tok.vocab_size > MAX_IDS + 1:
        raise ConfigError(f"{file}: {tok.vocab_size} ids do not fit uint16 shards")
    return tok
