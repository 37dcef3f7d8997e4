"""How many notes a voice may start at one onset, as a mask over the vocabulary.

A singer sings one note at a time and a violinist bows at most a double stop, but a
sampled REMI stream can give the soprano a three-note chord. ``VoiceLimits`` counts,
per decoding row, the notes each limited voice (a token program) has started at the
current onset, and masks the entries that would go past its limit. A BPE entry may
hold several notes and a ``Position`` or ``Bar`` token (which starts a new onset), so
each entry is described by what it adds before its first onset token, what it leaves
after its last one, and whether any run of notes inside it breaks a limit on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoiceLimits:
    programs: tuple[int, ...]  # token programs with a limit
    limits: np.ndarray  # (P,) most notes each may start at one onset
    before: np.ndarray  # (V, P) notes an entry adds before its first Position/Bar token
    after: np.ndarray  # (V, P) notes after its last Position/Bar token
    resets: np.ndarray  # (V,) bool: the entry holds a Position or Bar token
    inner_ok: np.ndarray  # (V,) bool: no onset wholly inside the entry breaks a limit

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]],
              limit_of_program: Mapping[int, int]) -> VoiceLimits | None:
        """Limits from ``{token program: most notes at one onset}``; ``None`` when there are none."""
        limited = {p: n for p, n in limit_of_program.items() if n > 0}
        if not limited:
            return None
        programs = tuple(sorted(limited))
        column = {p: i for i, p in enumerate(programs)}
        kind = np.zeros(len(base_vocab), dtype=np.int64)  # 0 other, 1 onset, 2 + column: program
        for b, token in enumerate(base_vocab):
            name, _, value = token.partition("_")
            if name in ("Position", "Bar"):
                kind[b] = 1
            elif name == "Program" and int(value) in column:
                kind[b] = 2 + column[int(value)]
        limits = np.array([limited[p] for p in programs], dtype=np.int64)
        n_entries, n_programs = len(entries), len(programs)
        before = np.zeros((n_entries, n_programs), dtype=np.int16)
        after = np.zeros((n_entries, n_programs), dtype=np.int16)
        resets = np.zeros(n_entries, dtype=bool)
        inner_ok = np.ones(n_entries, dtype=bool)
        for v, entry in enumerate(entries):
            run = np.zeros(n_programs, dtype=np.int64)
            for b in entry:
                k = kind[b]
                if k == 1:
                    if resets[v] and (run > limits).any():
                        inner_ok[v] = False
                    if not resets[v]:
                        before[v] = run
                    resets[v] = True
                    run[:] = 0
                elif k >= 2:
                    run[k - 2] += 1
            if resets[v]:
                after[v] = run
            else:
                before[v] = run
            if resets[v] and (run > limits).any():
                inner_ok[v] = False  # the onset the entry leaves open is already too full
        return cls(programs, limits, before, after, resets, inner_ok)

    def start(self, ids: Sequence[int]) -> np.ndarray:
        """(P,) notes each voice has started at the last onset of ``ids`` (a prompt)."""
        counts = np.zeros(len(self.programs), dtype=np.int64)
        for entry in ids:
            counts = self.after_entry(counts, int(entry))
        return counts

    def after_entry(self, counts: np.ndarray, entry: int) -> np.ndarray:
        if self.resets[entry]:
            return self.after[entry].astype(np.int64)
        return counts + self.before[entry]

    def restrict(self, mask: np.ndarray, counts: np.ndarray) -> None:
        """Clear, in place, the entries of ``mask`` (V,) that would break a limit.

        Where that would leave nothing, the mask is kept: a decodable piece comes first.
        """
        ok = self.inner_ok & (self.before + counts[None, :] <= self.limits[None, :]).all(axis=1)
        narrowed = mask & ok
        if narrowed.any():
            mask[:] = narrowed


__all__ = ["VoiceLimits"]
