"""Interpolated Witten-Bell n-gram model over token ids: the baseline for bits per note.

A transformer's loss means little on its own; the same held-out tokens scored by a
smoothed n-gram model say how much of it is context the model actually uses. Order 1 is
the add-one unigram (what a model knowing only token frequencies achieves).

Smoothing, with V = vocab_size and N = number of training targets::

    P1(w)   = (c(w) + 1) / (N + V)
    Pk(w|h) = (c(h,w) + T(h) * P{k-1}(w|h')) / (c(h) + T(h))      (k ≥ 2, |h| = k-1)
    Pk(w|h) = P{k-1}(w|h')                                          when c(h) = 0

where c(h) = Σ_w c(h,w), T(h) = number of distinct w seen after h and h' is h without
its first token. Near the start of a sequence the longest available context is used.

Each sequence starts with a style token: it is context for what follows but never a
target, neither when counting nor when scoring, so the model is fitted on exactly the
kind of events it is asked to predict. n-grams never cross sequence boundaries.

Everything is vectorized: every gram is one int64 code (ids packed ``bits`` apart, the
oldest id highest), counted by sorting and looked up with ``np.searchsorted``. Because
codes sort by context first, the grams following a context h are one contiguous range
of the order-k table, which gives c(h) and T(h) without a separate context table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["NGramModel", "fit_ngram"]

_MAX_CODE_BITS = 63  # codes are non-negative int64
_EVAL_CHUNK = 1 << 22  # targets scored at once: ~0.5 GB of temporaries


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields make generated __eq__ ambiguous
class NGramModel:
    """A fitted model. Fields are read-only tables; build it with :func:`fit_ngram`.

    ``codes[k-2]`` holds the sorted distinct codes of the order-k grams (k = 2..order)
    and ``cum_counts[k-2]`` their cumulative counts (length len(codes)+1, starting at 0),
    so a count or a context total is a difference of two entries.
    """

    order: int
    vocab_size: int
    bits: int
    unigram_counts: np.ndarray  # (vocab_size,) int64: c(w) over training targets
    n_targets: int  # N: number of training targets
    codes: tuple[np.ndarray, ...]
    cum_counts: tuple[np.ndarray, ...]

    def token_nll(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Natural-log NLL of each token at positions 1..len-1 of each sequence (position 0,
        the style token, is given, never predicted): one (len-1,) float64 array per sequence.

        All sequences are scored vectorized over their concatenation, in slices of
        ``_EVAL_CHUNK`` targets so that scoring a whole training set keeps memory bounded;
        an empty sequence gets an empty array. Raises ValueError for ids outside the
        vocabulary.
        """
        tokens, pos, lengths = _concatenate(sequences, self.vocab_size, self.order)
        targets = np.flatnonzero(pos >= 1)  # in sequence order
        nll = np.empty(targets.size, dtype=np.float64)
        for start in range(0, targets.size, _EVAL_CHUNK):
            chunk = slice(start, start + _EVAL_CHUNK)
            nll[chunk] = -np.log(self._target_probs(tokens, pos, targets[chunk]))
        return np.split(nll, np.cumsum(np.maximum(lengths - 1, 0))[:-1]) if lengths.size else []

    def _target_probs(self, tokens: np.ndarray, pos: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """P(tokens[i] | its context) for each target index i, built up from the unigram one
        order at a time; a target with fewer than k-1 tokens of context keeps P_{k-1}."""
        target_pos = pos[idx]
        code = tokens[idx].astype(np.int64)  # the target id; grows into the order-k gram's code
        p = (self.unigram_counts[code] + 1.0) / float(self.n_targets + self.vocab_size)
        low_mask = np.int64((1 << self.bits) - 1)
        for k in range(2, self.order + 1):
            older = tokens[np.maximum(idx - (k - 1), 0)].astype(np.int64)
            older <<= self.bits * (k - 1)
            code |= older
            valid = np.flatnonzero(target_pos >= k - 1)  # targets with k-1 tokens of context
            if valid.size == 0:
                break
            # Sorted queries make the binary searches walk the table in order; random probes
            # into a 20M-code table were measured 25× slower, far more than the argsort costs.
            sel = valid[np.argsort(code[valid])]
            grams = code[sel]
            table, cum = self.codes[k - 2], self.cum_counts[k - 2]
            lo = np.searchsorted(table, grams & ~low_mask, side="left")  # first gram of context h
            hi = np.searchsorted(table, grams | low_mask, side="right")  # one past its last
            j = np.searchsorted(table, grams, side="left")
            found = table.take(j, mode="clip") == grams
            c_hw = np.where(found, cum.take(j + 1, mode="clip") - cum.take(j, mode="clip"), 0)
            c_h = (cum[hi] - cum[lo]).astype(np.float64)
            types = (hi - lo).astype(np.float64)
            lower = p[sel]
            seen = c_h > 0
            p[sel] = np.where(seen, (c_hw + types * lower) / np.where(seen, c_h + types, 1.0), lower)
        return p


def fit_ngram(sequences: Iterable[np.ndarray], order: int, vocab_size: int) -> NGramModel:
    """Count the grams of every order 1..``order`` over ``sequences`` (1-D integer arrays,
    each starting with its style token).

    Raises ValueError if ``order`` < 1, if ``order`` ids of ceil(log2(vocab_size)) bits do
    not fit a 63-bit code, or if an id lies outside [0, vocab_size).
    """
    bits = _code_bits(order, vocab_size)
    tokens, pos, _ = _concatenate(list(sequences), vocab_size, order)
    targets = tokens[pos >= 1]
    unigram = np.bincount(targets, minlength=vocab_size).astype(np.int64)
    n_targets = int(targets.size)
    del targets
    count_dtype = np.int32 if n_targets < 2**31 else np.int64
    codes: list[np.ndarray] = []
    cums: list[np.ndarray] = []
    code = tokens.astype(np.int64)
    for k in range(2, order + 1):
        shift = k - 1
        # code[i] becomes the gram tokens[i-k+1..i]; entries with pos < k-1 would span a
        # sequence start (or the array start) and are dropped by the mask below.
        older = tokens[:-shift].astype(np.int64)
        older <<= bits * shift  # in place: one int64 temporary, not two
        code[shift:] |= older
        del older
        grams = code[pos >= k - 1]
        grams.sort()
        table, cum = _unique_cumulative(grams, count_dtype)
        del grams
        codes.append(_read_only(table))
        cums.append(_read_only(cum))
    return NGramModel(order=order, vocab_size=vocab_size, bits=bits, unigram_counts=_read_only(unigram),
                      n_targets=n_targets, codes=tuple(codes), cum_counts=tuple(cums))


def _code_bits(order: int, vocab_size: int) -> int:
    """Bits per id in a gram code; checks that a whole gram fits one int64."""
    if order < 1:
        raise ValueError(f"order={order}: must be at least 1")
    if vocab_size < 1:
        raise ValueError(f"vocab_size={vocab_size}: must be at least 1")
    bits = max(1, (vocab_size - 1).bit_length())  # = ceil(log2(vocab_size))
    if order * bits > _MAX_CODE_BITS:
        raise ValueError(f"order {order} × {bits} bits per id = {order * bits} bits: "
                         f"a gram code must fit {_MAX_CODE_BITS} bits; lower the order")
    return bits


def _concatenate(sequences: Sequence[np.ndarray], vocab_size: int,
                 order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, position in sequence clipped to ``order``, lengths) of the concatenation.

    ids are uint16 where the vocabulary allows (a quarter of int64's memory at 33M ids);
    the clipped positions (uint8) are all the masks need: pos ≥ k-1 means a full context.
    """
    arrays = [np.asarray(s) for s in sequences]
    for a in arrays:
        if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"sequences must be 1-D integer arrays, got {a.dtype} of shape {a.shape}")
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    dtype = np.uint16 if vocab_size <= 2**16 else np.int64
    if not arrays or lengths.sum() == 0:
        return np.empty(0, dtype), np.empty(0, np.uint8), lengths
    for a in arrays:
        if a.size and (a.min() < 0 or a.max() >= vocab_size):
            raise ValueError(f"ids must lie in [0, {vocab_size}), got [{a.min()}, {a.max()}]")
    tokens = np.concatenate([a.astype(dtype, copy=False) for a in arrays])
    starts = np.cumsum(lengths) - lengths
    pos = np.full(tokens.size, order, dtype=np.uint8)  # order ≤ 63: a code holds ≥ 1 bit per id
    for j in range(order):  # one pass per order, vectorized over sequences
        pos[starts[lengths > j] + j] = j
    return tokens, pos, lengths


def _read_only(array: np.ndarray) -> np.ndarray:
    """The model is frozen; its tables are too, so a caller cannot corrupt the counts."""
    array.flags.writeable = False
    return array


def _unique_cumulative(sorted_codes: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes, cumulative counts) of a sorted array. The index of each code's first
    occurrence is the number of smaller codes, so no separate count array is needed."""
    n = sorted_codes.size
    if n == 0:
        return sorted_codes.copy(), np.zeros(1, dtype)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    cum = np.empty(starts.size + 1, dtype)
    cum[:-1] = starts
    cum[-1] = n
    return sorted_codes[starts], cum
