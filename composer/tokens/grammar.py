"""The token grammar: which vocabulary entry may come next, as a dense table.

A piece is ``Style [Key] Bar TimeSig (Position [Tempo] (Program Pitch Velocity Duration)+ |
Bar TimeSig)* EOS``:
every bar opens with ``Bar TimeSig``, a position must lie inside the bar of its meter,
a note is ``Program Pitch Velocity Duration``, and EOS may only follow a complete note.

A state is a small tuple, (phase, meter), numbered densely. ``transition[state, id]`` is
the state after the vocabulary entry ``id`` (a BPE entry is checked by walking its base
tokens) or -1 when the entry is not allowed; ``allowed`` is ``transition >= 0``. With
~10 meters the table has ~80 states, so even an 8k vocabulary is a few MB.

Bars are not part of the state: ``bars_in_entry[id]`` says how many ``Bar`` tokens an
entry holds, and a decoding loop adds them up (``walk`` does for a finished sequence).
Controls (pitch range, key, instruments, meter) are boolean masks over the same
vocabulary (``control_mask``); ``composer.generate.decode.row_mask`` and-s them with
``allowed[state]`` and adds the rules about bars (no EOS before the last bar, closing a
bar that runs away).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# Phases outside a bar, then phases inside a bar (these exist once per meter).
GLOBAL_PHASES = ("start", "after_style", "expect_meter", "end", "after_key")
BAR_PHASES = ("bar_start", "at_position", "after_tempo", "expect_pitch", "expect_velocity",
              "expect_duration", "after_note")
START, AFTER_STYLE, EXPECT_METER, END, AFTER_KEY = range(5)
UNREACHABLE = np.iinfo(np.int32).max


@dataclass(frozen=True)
class StateInfo:
    phase: str  # one of GLOBAL_PHASES or BAR_PHASES
    meter: str | None  # "3/4" inside a bar, None outside


def _token_kind(token: str) -> tuple[str, str]:
    kind, _, value = token.partition("_")
    return kind, value


@dataclass
class TokenGrammar:
    """The REMI grammar of one tokenizer, over base tokens and over vocabulary entries."""

    meters: list[str]  # meter of each in-bar state group, e.g. ["2/2", "3/4", ...]
    states: list[StateInfo]  # by state number
    base_transition: np.ndarray  # (S, B) int16: next state after a base token, -1 invalid
    transition: np.ndarray  # (S, V) int16: next state after a vocabulary entry, -1 invalid
    bars_in_entry: np.ndarray  # (V,) int16: Bar tokens inside each entry
    base_vocab: list[str]  # base token strings
    entries: list[tuple[int, ...]]  # base ids of each entry
    eos_id: int
    pad_id: int
    start_state: int = START
    end_state: int = END
    allowed: np.ndarray = field(init=False)  # (S, V) bool
    can_end: np.ndarray = field(init=False)  # (S,) bool: EOS allowed here
    steps_to_end: np.ndarray = field(init=False)  # (S,) int32: fewest entries to END
    # transitions through entries without a Bar, and fewest such entries to END
    _bar_free: tuple[np.ndarray, np.ndarray] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.allowed = self.transition >= 0
        self.can_end = self.allowed[:, self.eos_id].copy()
        self.steps_to_end = _steps_to_end(self.transition, self.end_state)

    # ---- construction -------------------------------------------------------------

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]],
              positions_per_beat: int) -> TokenGrammar:
        """The grammar from the base vocabulary, the entries' expansions and the onset grid."""
        kinds = [_token_kind(t) for t in base_vocab]
        meters = [v for k, v in kinds if k == "TimeSig"]
        n_bar_phases = len(BAR_PHASES)
        n_states = len(GLOBAL_PHASES) + n_bar_phases * len(meters)
        if n_states >= np.iinfo(np.int16).max:
            raise ValueError(f"{n_states} grammar states do not fit int16")

        def in_bar(phase: str, meter_index: int) -> int:
            return len(GLOBAL_PHASES) + meter_index * n_bar_phases + BAR_PHASES.index(phase)

        states = [StateInfo(p, None) for p in GLOBAL_PHASES]
        for meter in meters:
            states += [StateInfo(p, meter) for p in BAR_PHASES]
        table = np.full((n_states, len(base_vocab)), -1, dtype=np.int16)  # (S, B)

        def ids_of(kind: str) -> list[int]:
            return [i for i, (k, _) in enumerate(kinds) if k == kind]

        style, bar, timesig = ids_of("Style"), ids_of("Bar"), ids_of("TimeSig")
        position, tempo, program = ids_of("Position"), ids_of("Tempo"), ids_of("Program")
        pitch, velocity, duration = ids_of("Pitch"), ids_of("Velocity"), ids_of("Duration")
        eos, pad, key = ids_of("EOS"), ids_of("PAD"), ids_of("Key")

        table[START, style] = AFTER_STYLE
        table[AFTER_STYLE, bar] = EXPECT_METER
        table[AFTER_STYLE, key] = AFTER_KEY
        table[AFTER_KEY, bar] = EXPECT_METER
        table[END, pad] = END  # so no row is empty; generation stops at EOS anyway
        for m, meter in enumerate(meters):
            table[EXPECT_METER, timesig[m]] = in_bar("bar_start", m)
            num, _den = (int(x) for x in meter.split("/"))
            n_positions = num * positions_per_beat  # miditok: positions_per_beat per beat
            inside = [i for i in position if int(kinds[i][1]) < n_positions]
            at_position, after_note = in_bar("at_position", m), in_bar("after_note", m)
            expect_pitch = in_bar("expect_pitch", m)
            for phase in ("bar_start", "after_tempo", "after_note"):
                table[in_bar(phase, m), inside] = at_position
                table[in_bar(phase, m), bar] = EXPECT_METER
            table[at_position, tempo] = in_bar("after_tempo", m)
            for phase in ("at_position", "after_tempo", "after_note"):
                table[in_bar(phase, m), program] = expect_pitch
            table[expect_pitch, pitch] = in_bar("expect_velocity", m)
            table[in_bar("expect_velocity", m), velocity] = in_bar("expect_duration", m)
            table[in_bar("expect_duration", m), duration] = after_note
            table[after_note, eos] = END

        transition = _entry_table(table, entries)
        bar_set = set(bar)
        bars = np.array([sum(1 for b in e if b in bar_set) for e in entries], dtype=np.int16)
        return cls(meters=meters, states=states, base_transition=table, transition=transition,
                   bars_in_entry=bars, base_vocab=list(base_vocab), entries=list(entries),
                   eos_id=eos[0], pad_id=pad[0])

    # ---- stepping -----------------------------------------------------------------

    @property
    def n_states(self) -> int:
        return len(self.states)

    def next_state(self, state: int, entry: int) -> int:
        """The state after ``entry``, or -1 if it is not allowed in ``state``."""
        if state < 0 or not 0 <= entry < self.transition.shape[1]:
            return -1
        return int(self.transition[state, entry])

    def accepts(self, ids: Iterable[int], *, complete: bool = True) -> bool:
        """True when ``ids`` follow the grammar from the start (and end with EOS if ``complete``)."""
        state = self.start_state
        for entry in ids:
            state = self.next_state(state, int(entry))
            if state < 0:
                return False
        return state == self.end_state or not complete

    def walk(self, ids: Iterable[int]) -> tuple[int, int]:
        """(state, bars) after ``ids`` from the start; raises ValueError on a refused id."""
        state, bars = self.start_state, 0
        for i, entry in enumerate(ids):
            nxt = self.next_state(state, int(entry))
            if nxt < 0:
                raise ValueError(f"id {entry} at position {i} is not allowed in state "
                                 f"{self.states[state]}")
            state, bars = nxt, bars + int(self.bars_in_entry[int(entry)])
        return state, bars

    def bars_done(self, ids: Iterable[int]) -> int:
        """How many bars ``ids`` have opened."""
        return int(sum(int(self.bars_in_entry[int(i)]) for i in ids))

    def is_complete(self, state: int) -> bool:
        return state == self.end_state

    # ---- masks --------------------------------------------------------------------

    def control_mask(self, *, pitch_range: tuple[int, int] | None = None,
                     pitch_classes: Iterable[int] | None = None,
                     programs: Iterable[int] | None = None,
                     meters: Iterable[str] | None = None) -> np.ndarray:
        """(V,) bool: entries whose every base token obeys the controls given.

        ``pitch_range`` is inclusive (low, high) MIDI pitches; ``pitch_classes`` 0..11 (C=0)
        for a key; ``programs`` General MIDI programs; ``meters`` like ``{"3/4", "6/8"}``.
        """
        ok = np.ones(len(self.base_vocab), dtype=bool)  # (B,)
        classes = None if pitch_classes is None else {int(c) % 12 for c in pitch_classes}
        program_set = None if programs is None else {int(p) for p in programs}
        meter_set = None if meters is None else set(meters)
        for i, token in enumerate(self.base_vocab):
            kind, value = _token_kind(token)
            if kind == "Pitch":
                p = int(value)
                if pitch_range is not None and not pitch_range[0] <= p <= pitch_range[1]:
                    ok[i] = False
                if classes is not None and p % 12 not in classes:
                    ok[i] = False
            elif kind == "Program" and program_set is not None:
                ok[i] = int(value) in program_set
            elif kind == "TimeSig" and meter_set is not None:
                ok[i] = value in meter_set
        return self.entries_all(ok)

    def entries_all(self, base_ok: np.ndarray) -> np.ndarray:
        """(V,) bool: entries all of whose base tokens are ``base_ok`` (empty entries: False)."""
        lengths = np.array([len(e) for e in self.entries], dtype=np.int64)
        owner = np.repeat(np.arange(len(self.entries)), lengths)  # entry of each flat base token
        flat = np.fromiter((b for e in self.entries for b in e), dtype=np.int64, count=len(owner))
        bad = np.bincount(owner, weights=~base_ok[flat], minlength=len(self.entries))
        return (bad == 0) & (lengths > 0)

    def ending(self, state: int, control: np.ndarray | None = None) -> list[int]:
        """A shortest run of entries from ``state`` to the end (EOS included), within ``control``."""
        if control is None:
            return self._walk_to_end(state, self.transition, self.steps_to_end)
        return self._walk_to_end(state, *self._restricted(control))

    def closing(self, state: int, control: np.ndarray | None = None) -> list[int]:
        """A shortest ending from ``state`` that opens no new bar and keeps to ``control``.

        A piece is closed once its last bar is full; the shortest ending alone may run
        through an entry that holds a ``Bar`` and add a bar nobody asked for, or write a
        pitch outside the key asked for. Where no such ending exists the bar count wins
        over the control, and where every way on opens a bar, any shortest ending is taken.
        """
        if self.can_end[state]:
            return [self.eos_id]
        if control is not None:
            kept = self._shortest_path(state, (self.bars_in_entry == 0) & control)
            if kept is not None:
                return kept
        if self._bar_free is None:
            self._bar_free = self._restricted(self.bars_in_entry == 0)
        transition, steps = self._bar_free
        if steps[state] == UNREACHABLE:  # every way on opens a bar first
            return self.ending(state)
        return self._walk_to_end(state, transition, steps)

    def _shortest_path(self, state: int, entries: np.ndarray) -> list[int] | None:
        """A shortest run of ``entries`` (V,) from ``state`` to the end, or None.

        Breadth first from ``state``: a control differs from piece to piece, and the
        table of distances from every state (``_restricted``) costs a quarter of a second
        at the default model's size, this a few milliseconds.
        """
        came_from = {state: (-1, -1)}  # state → (state before, entry taken)
        frontier = [state]
        while frontier and self.end_state not in came_from:
            reached = []
            for here in frontier:
                candidates = np.flatnonzero(entries & (self.transition[here] >= 0))
                _, first = np.unique(self.transition[here, candidates], return_index=True)
                # states in the order of the lowest entry reaching them: the path found is
                # then the one _walk_to_end takes (the lowest entry ids among shortest paths)
                for k in np.sort(first).tolist():
                    target = int(self.transition[here, candidates[k]])
                    if target not in came_from:
                        came_from[target] = (here, int(candidates[k]))
                        reached.append(target)
            frontier = reached
        if self.end_state not in came_from:
            return None
        path, at = [], self.end_state
        while at != state:
            at, entry = came_from[at]
            path.append(entry)
        return path[::-1]

    def _restricted(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transitions through ``entries`` (V,) only, and the fewest of them to the end."""
        transition = np.where(entries[None, :], self.transition, -1)  # (S, V)
        return transition, _steps_to_end(transition, self.end_state)

    def _walk_to_end(self, state: int, transition: np.ndarray, steps: np.ndarray) -> list[int]:
        out: list[int] = []
        while state != self.end_state:
            if steps[state] == UNREACHABLE:
                raise ValueError(f"no way to end from state {self.states[state]}")
            nxt = transition[state]
            cost = np.where(nxt >= 0, steps[np.maximum(nxt, 0)], UNREACHABLE)
            entry = int(np.argmin(cost))
            out.append(entry)
            state = int(nxt[entry])
        return out

    # ---- repair (decoding arbitrary ids) -----------------------------------------

    def repair_base(self, base: Sequence[int] | np.ndarray) -> np.ndarray:
        """Base ids made grammatical: refused tokens dropped, stopping at the first EOS.

        A sequence that does not open with a style token and a bar (a bare body, say) is
        given what it lacks: it is read as if a style had been seen, and as if
        ``Bar TimeSig_4/4`` (or the first meter) opened it when its first token needs a bar.
        """
        table = self.base_transition
        state = self.start_state
        kept: list[int] = []
        opening = self._opening_tokens()
        for b in np.asarray(base, dtype=np.int64).tolist():
            nxt = int(table[state, b])
            if nxt < 0 and state == START and not self._is_kind(b, "Style"):
                state = AFTER_STYLE
                nxt = int(table[state, b])
            if nxt < 0 and state in (AFTER_STYLE, AFTER_KEY) and not self._is_kind(b, "Bar"):
                for o in opening:
                    kept.append(o)
                    state = int(table[state, o])
                nxt = int(table[state, b])
            if nxt < 0:
                continue
            kept.append(b)
            state = nxt
            if state == self.end_state:
                break
        return np.asarray(kept, dtype=np.int64)

    def _is_kind(self, base_id: int, kind: str) -> bool:
        return 0 <= base_id < len(self.base_vocab) and self.base_vocab[base_id].startswith(kind + "_")

    def _opening_tokens(self) -> list[int]:
        bar = self.base_vocab.index("Bar_None")
        meter = "4/4" if "4/4" in self.meters else self.meters[0]
        return [bar, self.base_vocab.index(f"TimeSig_{meter}")]

    def nbytes(self) -> int:
        return int(self.transition.nbytes + self.allowed.nbytes + self.base_transition.nbytes)


def _entry_table(base_table: np.ndarray, entries: Sequence[tuple[int, ...]]) -> np.ndarray:
    """(S, V) next state after each entry, by walking its base tokens through ``base_table``.

    Only the (state, entry) pairs whose first token is allowed are walked: a few percent
    of all S × V pairs, so building the grammar is no longer a noticeable share of start-up.
    """
    n_states, n_entries = base_table.shape[0], len(entries)
    table = np.full((n_states, n_entries), -1, dtype=np.int16)  # (S, V)
    longest = max((len(e) for e in entries), default=0)
    if longest == 0:
        return table
    padded = np.full((n_entries, longest), -1, dtype=np.int64)  # (V, L); an empty entry never steps
    for v, e in enumerate(entries):
        padded[v, : len(e)] = e
    first = base_table[:, np.maximum(padded[:, 0], 0)]  # (S, V) state after each first token
    states, cols = np.nonzero((first >= 0) & (padded[:, 0] >= 0)[None, :])  # (P,) each
    current = first[states, cols].astype(np.int64)  # (P,)
    for j in range(1, longest):
        token = padded[cols, j]  # (P,)
        walking = token >= 0  # entries longer than j
        current[walking] = base_table[current[walking], token[walking]]
        alive = current >= 0
        states, cols, current = states[alive], cols[alive], current[alive]
    table[states, cols] = current
    return table


def _steps_to_end(transition: np.ndarray, end_state: int) -> np.ndarray:
    """(S,) fewest entries from each state to ``end_state`` (UNREACHABLE if none)."""
    n_states = transition.shape[0]
    dist = np.full(n_states, UNREACHABLE, dtype=np.int64)
    dist[end_state] = 0
    ok = transition >= 0
    safe = np.maximum(transition, 0)
    for _ in range(n_states):
        via = np.where(ok, dist[safe], UNREACHABLE)  # (S, V)
        best = np.minimum(dist, np.where(via.min(axis=1) == UNREACHABLE, UNREACHABLE,
                                         via.min(axis=1) + 1))
        best[end_state] = 0
        if np.array_equal(best, dist):
            break
        dist = best
    return dist.astype(np.int32)
