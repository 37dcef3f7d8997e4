"""Rules about onsets the grammar table cannot hold: positions move forward, and a voice
starts no more notes at one onset than it can sing or bow.

The grammar's states know the phase of a bar (after a position, expecting a pitch...)
but not *which* position was last written, nor which voices already started a note
there. ``OnsetRules`` tracks both per decoding row:

- a ``Position`` token must lie after the bar's last one (miditok writes each onset once,
  in order; a model that writes the same position again stacks notes onto an onset and
  can loop in a bar until the decoder closes it);
- a singer or a wind starts one note at an onset and a bowed string two (a double stop),
  so a sampled stream cannot give the soprano a three-note chord.

A BPE entry may hold several notes and ``Position`` or ``Bar`` tokens, so each entry is
described by the first position it writes (checked against the row's), what it adds to
the onset open before it, what it leaves open after its last onset token, and whether a
run of notes wholly inside it breaks a limit on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

NO_ONSET = -2  # the entry writes no Position or Bar token
BAR_START = -1  # the position before the first of a bar


@dataclass
class OnsetState:
    position: int  # the row's last position in its bar (BAR_START before the first)
    counts: np.ndarray  # (P,) notes each limited voice has started at that position


@dataclass(frozen=True)
class OnsetRules:
    programs: tuple[int, ...]  # token programs with a limit
    limits: np.ndarray  # (P,) most notes each may start at one onset
    first_position: np.ndarray  # (V,) first Position value an entry writes before any Bar; NO_ONSET else
    last_position: np.ndarray  # (V,) position open after the entry; BAR_START after a Bar; NO_ONSET
    before: np.ndarray  # (V, P) notes an entry adds before its first Position/Bar token
    after: np.ndarray  # (V, P) notes after its last Position/Bar token
    inner_ok: np.ndarray  # (V,) bool: no onset wholly inside the entry breaks a limit
    # (position, counts) -> (V,) allowed entries: a piece visits few distinct onset states,
    # and the (V, P) check is most of the rule's cost at every decoding step
    _allowed: dict[bytes, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]],
              limit_of_program: Mapping[int, int]) -> OnsetRules:
        """Rules for a vocabulary; ``limit_of_program`` maps token programs to their most
        notes at one onset (programs left out, or 0, have no limit)."""
        limited = {p: n for p, n in limit_of_program.items() if n > 0}
        programs = tuple(sorted(limited))
        column = {p: i for i, p in enumerate(programs)}
        # per base token: 0 other, 1 bar, 2 position, 3 + column: a limited program
        kind = np.zeros(len(base_vocab), dtype=np.int64)
        value = np.zeros(len(base_vocab), dtype=np.int64)
        for b, token in enumerate(base_vocab):
            name, _, text = token.partition("_")
            if name == "Bar":
                kind[b] = 1
            elif name == "Position":
                kind[b], value[b] = 2, int(text)
            elif name == "Program" and int(text) in column:
                kind[b] = 3 + column[int(text)]
        limits = np.array([limited[p] for p in programs], dtype=np.int64)
        n_entries, n_programs = len(entries), len(programs)
        first = np.full(n_entries, NO_ONSET, dtype=np.int64)
        last = np.full(n_entries, NO_ONSET, dtype=np.int64)
        before = np.zeros((n_entries, n_programs), dtype=np.int16)
        after = np.zeros((n_entries, n_programs), dtype=np.int16)
        inner_ok = np.ones(n_entries, dtype=bool)
        for v, entry in enumerate(entries):
            run = np.zeros(n_programs, dtype=np.int64)
            seen_onset = seen_bar = False
            for b in entry:
                k = kind[b]
                if k in (1, 2):
                    if seen_onset and (run > limits).any():
                        inner_ok[v] = False
                    if not seen_onset:
                        before[v] = run
                    if k == 2 and not seen_bar and first[v] == NO_ONSET:
                        first[v] = value[b]
                    seen_bar = seen_bar or k == 1
                    seen_onset = True
                    last[v] = BAR_START if k == 1 else value[b]
                    run[:] = 0
                elif k >= 3:
                    run[k - 3] += 1
            if seen_onset:
                after[v] = run
                if (run > limits).any():
                    inner_ok[v] = False  # the onset the entry leaves open is already too full
            else:
                before[v] = run
        return cls(programs, limits, first, last, before, after, inner_ok)

    def start(self, ids: Sequence[int]) -> OnsetState:
        """The state after ``ids`` (a prompt)."""
        state = OnsetState(BAR_START, np.zeros(len(self.programs), dtype=np.int64))
        for entry in ids:
            state = self.after_entry(state, int(entry))
        return state

    def after_entry(self, state: OnsetState, entry: int) -> OnsetState:
        last = int(self.last_position[entry])
        if last == NO_ONSET:
            return OnsetState(state.position, state.counts + self.before[entry])
        return OnsetState(last, self.after[entry].astype(np.int64))

    def restrict(self, mask: np.ndarray, state: OnsetState) -> None:
        """Clear, in place, the entries of ``mask`` (V,) that would break a rule.

        Where that would leave nothing, the mask is kept: a decodable piece comes first.
        """
        narrowed = mask & self.allowed(state)
        if narrowed.any():
            mask[:] = narrowed

    def allowed(self, state: OnsetState) -> np.ndarray:
        """(V,) bool: the entries that break no rule in ``state``."""
        cache_key = np.int64(state.position).tobytes() + state.counts.astype(np.int64).tobytes()
        ok = self._allowed.get(cache_key)
        if ok is None:
            first = self.first_position
            ok = (first == NO_ONSET) | (first > state.position)
            if self.programs:
                room = self.limits - state.counts  # (P,)
                ok &= self.inner_ok & (self.before <= room[None, :]).all(axis=1)
            if len(self._allowed) > 4096:
                self._allowed.clear()
            self._allowed[cache_key] = ok
        return ok


__all__ = ["OnsetRules", "OnsetState"]
