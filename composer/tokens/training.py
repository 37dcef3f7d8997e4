"""Corpus → tokenizer: REMI base tokens of the train split, then BPE on them.

``train_tokenizer`` encodes the train split to REMI base tokens and trains BPE on them
(plus a few transposed copies, so merges do not favour the corpus's keys). The
tokenizer file records what it was made from (``info.corpus_manifest_sha256`` and its
settings, the vocabulary size among them), so ``tokenizer_stale_reason`` can tell
whether it still fits a corpus, e.g. after the corpus was rebuilt with other styles.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from composer.corpus.build import read_manifest
from composer.errors import ComposerError, CorpusError
from composer.io.outputs import prepare_out_dir
from composer.music.voices import voice_indexes
from composer.tokens.bpe import train_bpe
from composer.tokens.pieces import NOT_MADE, WORKER, manifest_sha256, pool_map, read_score
from composer.tokens.settings import TokenizerSettings, new_remi
from composer.tokens.shards import DEFAULT_TRANSPOSITIONS, Progress
from composer.tokens.tokenizer import Tokenizer, tokenizer_path

CORPUS_HASH = "corpus_manifest_sha256"  # key in the tokenizer's info: the corpus it was trained on


@dataclass
class TrainResult:
    path: Path  # the tokenizer.json written
    tokenizer: Tokenizer
    pieces: int  # train pieces encoded
    notes: int  # their notes
    base_tokens: int  # their REMI tokens
    bpe_tokens: int  # the same after BPE
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"id", "reason"}
    seconds: float = 0.0


def _init_untrained(settings: dict[str, Any], styles: list[str], meters: list[str],
                    voice_programs: list[list[int]]) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    remi = new_remi(TokenizerSettings.from_dict(settings), styles, meters, warn=False)
    WORKER["tokenizer"] = Tokenizer(remi=remi, styles=styles, settings=TokenizerSettings.from_dict(settings),
                                    voice_programs={(p, v): t for p, v, t in voice_programs})


def _no_init() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _programs_job(path: str) -> list[int]:
    """The General MIDI programs of a piece's pitched tracks, in order ([] if unreadable)."""
    try:
        return [t.program for t in read_score(Path(path)).tracks if not t.is_drum]
    except ComposerError:
        return []


def voice_program_table(pieces: Iterable[Sequence[int]]) -> dict[tuple[int, int], int]:
    """(program, voice ≥ 1) → a token program for every voice the pieces have.

    Each piece lists its tracks' programs in order. Voice 0 keeps its own program; the
    others take the programs that no piece uses, the nearest above their own first, so
    the four choir voices of a chorale (52) are written 52, 53, 54, 55 when those are free.
    """
    voices: dict[int, int] = {}
    used: set[int] = set()
    for programs in pieces:
        used.update(programs)
        for program, voice in zip(programs, voice_indexes(programs), strict=True):
            voices[program] = max(voices.get(program, 0), voice + 1)
    free = [p for p in range(128) if p not in used]
    table: dict[tuple[int, int], int] = {}
    for program in sorted(voices):
        for voice in range(1, voices[program]):
            if not free:
                return table  # more voices than free programs: the rest share the last
            slot = min(free, key=lambda f: (f - program) % 128)
            free.remove(slot)
            table[(program, voice)] = slot
    return table


def _base_job(path: str) -> tuple[np.ndarray | None, int, str | None]:
    """(base ids as uint16, notes, None) or (None, 0, reason)."""
    tok: Tokenizer = WORKER["tokenizer"]
    try:
        score = read_score(Path(path))
        return tok.encode_base(score).astype(np.uint16), score.note_num(), None
    except ComposerError as exc:
        return None, 0, f"{Path(path).name}: {exc}"


def train_tokenizer(corpus_dir: Path, out_dir: Path, settings: TokenizerSettings | None = None,
                    workers: int = 0, progress: Progress | None = None) -> TrainResult:
    """Train REMI+BPE on the corpus's train split and save ``out_dir/tokenizer.json``."""
    started = time.monotonic()
    settings = settings or TokenizerSettings()
    settings.validate()
    corpus_hash = manifest_sha256(corpus_dir)  # before reading it: a rebuild meanwhile reads as stale
    records = read_manifest(corpus_dir)
    styles = sorted({r["style"] for r in records})
    meters = sorted({m for r in records for m in r.get("time_signatures", [])})
    train = [r for r in records if r.get("split") == "train"]
    if not train:
        raise CorpusError(f"{corpus_dir}: no pieces in the train split")
    prepare_out_dir(out_dir)
    remi = new_remi(settings, styles, meters)
    jobs = [str(corpus_dir / r["midi"]) for r in train]
    sequences: list[np.ndarray] = []
    skipped: list[dict[str, str]] = []
    notes = 0
    workers = workers or os.cpu_count() or 1
    voice_programs: dict[tuple[int, int], int] = {}
    if settings.voices:
        every = [str(corpus_dir / r["midi"]) for r in records]
        voice_programs = voice_program_table(pool_map(_programs_job, every, workers, _no_init, ()))
    table_rows = [[p, v, t] for (p, v), t in sorted(voice_programs.items())]
    results = pool_map(_base_job, jobs, workers, _init_untrained,
                       (asdict(settings), styles, meters, table_rows))
    for done, (record, (base, n_notes, reason)) in enumerate(zip(train, results, strict=True), 1):
        if base is None:
            skipped.append({"id": record["id"], "reason": reason or "unknown"})
        else:
            sequences.append(base)
            notes += n_notes
        if progress:
            progress(done, len(train))
    if not sequences:
        raise CorpusError(f"{corpus_dir}: no train piece could be tokenized "
                          f"(first problem: {skipped[0]['reason']})")
    helper = Tokenizer(remi=remi, styles=styles, settings=settings, voice_programs=voice_programs)
    rng = random.Random(settings.seed)
    extra = []
    for base in sequences:
        shifts = [k for k in DEFAULT_TRANSPOSITIONS if k != 0]
        for k in rng.sample(shifts, min(settings.bpe_transpositions, len(shifts))):
            moved = helper.transpose_base(base.astype(np.int64), k)
            if moved is not None:
                extra.append(moved)
    train_bpe(remi, [s.astype(np.int64) for s in sequences] + extra, settings.vocab_size)
    tok = Tokenizer(remi=remi, styles=styles, settings=settings, voice_programs=voice_programs)
    tok.check_ids()
    bpe_tokens = sum(len(ids) for ids in tok.bpe_many([s.astype(np.int64) for s in sequences]))
    base_tokens = int(sum(len(s) for s in sequences))
    tok.info = {"train_pieces": len(sequences), "train_notes": notes,
                "base_tokens_per_note": round(base_tokens / max(notes, 1), 4),
                "bpe_tokens_per_note": round(bpe_tokens / max(notes, 1), 4),
                CORPUS_HASH: corpus_hash}
    path = tok.save(out_dir)
    return TrainResult(path=path, tokenizer=tok, pieces=len(sequences), notes=notes,
                       base_tokens=base_tokens, bpe_tokens=bpe_tokens, skipped=skipped,
                       seconds=time.monotonic() - started)


def tokenizer_stale_reason(tokenizer: Path, corpus_dir: Path, settings: TokenizerSettings) -> str | None:
    """Why ``tokenizer`` (a folder or its JSON) is not what ``train_tokenizer(corpus_dir, …,
    settings)`` would make now, in a few words; ``None`` when it is.

    Only the recorded facts are compared (the corpus manifest's hash and every setting),
    so this is quick: nothing is encoded and miditok is not loaded.
    """
    file = tokenizer_path(tokenizer)
    if not file.is_file():
        return NOT_MADE
    try:
        ours = json.loads(file.read_text(encoding="utf-8"))["composer"]
        recorded = ours.get("info", {}).get(CORPUS_HASH)
        saved = ours.get("settings", {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "its file is damaged"
    if recorded is None:
        return "it does not record which corpus it was trained on"
    if recorded != manifest_sha256(corpus_dir):
        return "the corpus changed since it was trained"
    wanted = asdict(settings)
    try:
        had = asdict(TokenizerSettings.from_dict(saved))
    except TypeError:
        return "its settings are damaged"
    changed = [f"{f.name} {had[f.name]} → {wanted[f.name]}" for f in fields(TokenizerSettings)
               if had[f.name] != wanted[f.name]]
    return f"other settings ({', '.join(changed)})" if changed else None
