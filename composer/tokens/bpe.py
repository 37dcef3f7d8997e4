"""BPE over bar words: training, the entry table and the cached word-by-word encoder.

miditok trains a 🤗 ``tokenizers`` BPE model over *bytes*: base id ``i`` is the
character ``chr(i + CHR_OFFSET)`` and a piece is cut into one word per bar. composer
encodes with that model directly, bar word by bar word through a cache, because
miditok's own ``encode`` re-tokenizes the score and is several times slower when the
same bars recur (every transposed copy of a corpus). Everything here that reaches into
miditok's private attributes (``_model``, ``_vocab_learned_bytes_to_tokens``) is in this
module, and ``tests/test_contracts.py`` checks that it still gives miditok's own ids.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.errors import ConfigError

if TYPE_CHECKING:
    import miditok

CHR_OFFSET = 33  # miditok's CHR_ID_START: base id i is the character chr(i + 33) in BPE
BPE_CACHE_WORDS = 200_000  # bar words remembered with their BPE ids
BAR_TOKEN = "Bar_None"


def bar_words(base: np.ndarray, bar_id: int) -> list[str]:
    """Base ids as BPE words: one string per bar (cut before every ``Bar`` token)."""
    base = np.asarray(base, dtype=np.int64)
    cuts = np.flatnonzero(base == bar_id)
    cuts = cuts[cuts > 0]
    chars = (base + CHR_OFFSET).astype("<u4").tobytes().decode("utf-32-le")  # chr() of each
    bounds = [0, *cuts.tolist(), len(base)]
    return [chars[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def learned_entries(remi: miditok.REMI, base_ids: Mapping[str, int]) -> list[tuple[int, ...]]:
    """For each BPE id, the base ids it stands for (``()`` for BPE's bare word marker).

    An untrained tokenizer has one entry per base token.
    """
    model = remi._model
    if model is None:
        return [(i,) for i in range(len(base_ids))]
    learned = remi._vocab_learned_bytes_to_tokens
    out: list[tuple[int, ...]] = []
    for i in range(model.get_vocab_size(with_added_tokens=True)):
        key = model.id_to_token(i)
        out.append(() if key is None else tuple(base_ids[t] for t in learned[key]))
    return out


def check_base_ids(remi: miditok.REMI, base_vocab: Sequence[str]) -> None:
    """Base tokens (specials included) must keep their base id as BPE ids; we rely on it."""
    model = remi._model
    if model is None:
        return
    moved = [t for b, t in enumerate(base_vocab) if model.token_to_id(chr(b + CHR_OFFSET)) != b]
    if moved:
        raise ConfigError(f"tokenizer: BPE renumbered base tokens ({', '.join(moved[:3])}...); "
                          "train the tokenizer again")


class BarBpe:
    """A trained tokenizer's BPE applied bar word by bar word, remembering the words it saw."""

    def __init__(self, remi: miditok.REMI, bar_id: int, entry_lengths: np.ndarray) -> None:
        self.bar_id = bar_id
        self._nonempty = np.asarray(entry_lengths) > 0  # (V,) False for BPE's bare word marker
        self._cache: dict[str, list[int]] = {}
        self._word = _word_encoder(remi._model) if remi._model is not None else None

    def encode_many(self, bases: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BPE ids of several base-id sequences (REMI tokens only, no specials)."""
        if self._word is None:
            return [np.asarray(b, dtype=np.int64) for b in bases]
        cache, tokenize = self._cache, self._word
        out = []
        for base in bases:
            ids: list[int] = []
            for word in bar_words(base, self.bar_id):
                merged = cache.get(word)
                if merged is None:
                    if len(cache) >= BPE_CACHE_WORDS:
                        cache.clear()
                    merged = cache[word] = tokenize(word)
                ids.extend(merged)
            arr = np.asarray(ids, dtype=np.int64)
            out.append(arr[self._nonempty[arr]])  # the bare word marker stands for no token
        return out


def _word_encoder(hf: Any) -> Callable[[str], list[int]]:
    """One bar word → ids. Calls the BPE model directly when the pipeline around it only
    adds the word marker (2-3x faster than ``Tokenizer.encode``); same ids either way."""
    from tokenizers import pre_tokenizers

    pre = hf.pre_tokenizer
    if hf.normalizer is None and (pre is None or (
            isinstance(pre, pre_tokenizers.Metaspace) and pre.prepend_scheme == "always")):
        prefix = "" if pre is None else pre.replacement
        model = hf.model
        return lambda word: [t.id for t in model.tokenize(prefix + word)]
    return lambda word: hf.encode([word], is_pretokenized=True).ids


def train_bpe(remi: miditok.REMI, sequences: Iterable[np.ndarray], vocab_size: int) -> None:
    """Train miditok's BPE on base-id sequences (each cut into bar words, as at encoding)."""
    bar_id = remi.vocab[BAR_TOKEN]
    words = [bar_words(s, bar_id) for s in sequences]
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


__all__ = ["BPE_CACHE_WORDS", "CHR_OFFSET", "BarBpe", "bar_words", "check_base_ids", "learned_entries",
           "train_bpe"]
