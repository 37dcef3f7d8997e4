"""Polynomial rolling hashes of integer sequences, vectorised with numpy (arithmetic modulo
2**64 in uint64), and the sorted-table search that finds equal n-grams.

``novelty`` uses them to find the longest run of notes a piece shares with any training
piece; a hash only proposes a match, the codes themselves confirm it.
"""

from __future__ import annotations

import numpy as np

HASH_BASE = 0x9E3779B97F4A7C15  # odd, hence invertible modulo 2**64


def powers(base: int, count: int) -> np.ndarray:
    """base**j mod 2**64 for j < count (uint64 arithmetic wraps modulo 2**64)."""
    out = np.full(count, base, dtype=np.uint64)
    if count:
        out[0] = 1
    return np.cumprod(out, out=out)


def prefix_hashes(codes: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """C with C[k] = sum_{j<k} codes[j]·base**j, and base**-i, both mod 2**64.

    The hash of the n-gram at i is then (C[i+n] − C[i])·base**−i, the same wherever the
    n-gram stands, for every n at once.
    """
    values = powers(base, codes.size)
    values *= codes.astype(np.int64, copy=False).view(np.uint64)  # codes are >= 0
    prefix = np.zeros(codes.size + 1, dtype=np.uint64)
    np.cumsum(values, out=prefix[1:])
    return prefix, powers(pow(base, -1, 1 << 64), codes.size + 1)


def gram_hashes(prefix: np.ndarray, inverse: np.ndarray, starts: np.ndarray,
                 lengths: np.ndarray | int) -> np.ndarray:
    """Hashes of the grams of ``lengths`` codes at ``starts``: a fresh array, safe to modify."""
    hashes = prefix[starts + lengths]
    hashes -= prefix[starts]
    hashes *= inverse[starts]
    return hashes


def mix(hashes: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: a bijection that spreads every bit into the high bits.

    Table entries keep only a hash's high bits, and a 1-gram's hash is its code, a small
    number whose high bits are all zero. In place because fresh multi-megabyte arrays
    (page faults) cost more than the arithmetic.
    """
    shifted = hashes >> np.uint64(30)
    hashes ^= shifted
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(hashes, np.uint64(27), out=shifted)
    hashes ^= shifted
    hashes *= np.uint64(0x94D049BB133111EB)
    np.right_shift(hashes, np.uint64(31), out=shifted)
    hashes ^= shifted
    return hashes


def first_not_below(entries: np.ndarray, needles: np.ndarray, low: np.ndarray, high: np.ndarray,
                     *, strictly: bool) -> np.ndarray:
    """Per needle, the first index in [low, high) of sorted ``entries`` that is >= (or >) it.

    A binary search run for all needles at once; the ranges are a bucket each, so a few
    rounds suffice.
    """
    low, high = low.astype(np.int64), high.astype(np.int64)
    last = max(0, entries.size - 1)
    while True:
        active = low < high
        if not active.any():
            return low
        middle = (low + high) // 2
        probe = entries[np.minimum(middle, last)]
        below = probe <= needles if strictly else probe < needles
        low = np.where(active & below, middle + 1, low)
        high = np.where(active & ~below, middle, high)
