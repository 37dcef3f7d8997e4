"""A melody the decoder must write note for note, as one voice, while the model writes the others.

``composer harmonize`` gives the model a melody as one voice (the soprano of a chorale,
say) and lets it write the rest. The melody is not a prompt: it runs through the whole
piece, so the decoder *locks* it in. At every step an entry is allowed only if its base
tokens keep to the melody:

- no ``Position`` past the melody's next onset in its bar, and no ``Bar`` while a melody
  note of the current bar is still to come, so the model cannot skip a melody note;
- at the melody's onset the melody's voice writes the melody's pitch and duration, any
  velocity, in its place among the voices (the tokens write the voices of an onset in
  program order: a soprano first, a bass last);
- the melody's voice writes nothing else, and the piece cannot end before the melody has.

The other voices and their rhythm are the model's; their harmony too, unless a chord plan
(``music.harmony.plan_chords``) is given: then on each planned beat the other voices may
strike only the planned chord's pitch classes (the lowest voice only its root), and with
``ranges`` each stays within its pitches. The melody comes in as
base tokens (the tokenizer's own encoding of it), so what is kept is exactly what the
tokens can say: onsets on the model's grid, durations from its duration tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import symusic

FREE, PROGRAM, PITCH, VELOCITY = range(4)  # how much of the melody note in hand is written
_BAR, _POSITION, _PROGRAM, _PITCH, _VELOCITY, _DURATION, _EOS, _OTHER = range(8)
_KINDS = {"Bar": _BAR, "Position": _POSITION, "Program": _PROGRAM, "Pitch": _PITCH,
          "Velocity": _VELOCITY, "Duration": _DURATION, "EOS": _EOS}


@dataclass(frozen=True)
class LockedNote:
    bar: int  # the bar it starts in, counted from 1 as the Bar tokens open them
    position: int  # its Position value in that bar
    pitch: int
    duration: str  # its Duration token's value, e.g. "1.0.24"


@dataclass(frozen=True)
class LockState:
    bar: int = 0  # bars opened so far
    position: int = -1  # the row's last position in its bar (-1 before the first)
    next_note: int = 0  # index of the melody note to write next
    phase: int = FREE
    at_onset: bool = False  # the row is at the onset of the next melody note
    program: int | None = None  # the latest Program token's value
    waiting: frozenset[int] = frozenset()  # voices still to enter at the melody's first onset


def melody_line(score: symusic.Score, program: int) -> tuple[symusic.Score, bool]:
    """``score``'s top line as one monophonic track on ``program``, and whether it had more.

    At each onset the highest pitched (non-drum) note is kept; a note ends where the next
    kept one starts. Meter, tempo and key signatures stay as they were.
    """
    import symusic

    rows = sorted((n.time, -n.pitch, n.duration) for t in score.tracks if not t.is_drum
                   for n in t.notes if n.duration > 0)
    line: list[tuple[int, int, int]] = []  # (onset, pitch, duration)
    for time, neg_pitch, duration in rows:
        if line and line[-1][0] == time:
            continue  # a lower note of the same onset
        if line and line[-1][0] + line[-1][2] > time:
            start, pitch, _ = line[-1]
            line[-1] = (start, pitch, time - start)  # the line moves on: the held note ends
        line.append((time, -neg_pitch, duration))
    had_more = sum(len(t.notes) for t in score.tracks if not t.is_drum) > len(line)
    out = symusic.Score(score.tpq)
    out.time_signatures.extend(score.time_signatures)
    out.key_signatures.extend(score.key_signatures)
    out.tempos.extend(score.tempos)
    track = symusic.Track("Melody", program, False)
    for time, pitch, duration in line:
        track.notes.append(symusic.Note(time, duration, pitch, 80))
    out.tracks.append(track)
    return out, had_more


def beat_positions(base_tokens: Sequence[str], positions_per_beat: int) -> list[tuple[int, int]]:
    """(bar, position) of every quarter-note beat of a base-token sequence, in order: where
    the n-th beat of the decoded piece (``music.facts.beat_chords``) falls in the tokens.

    A bar of meter n/d holds n beats of ``positions_per_beat`` positions each (miditok's
    beat is the meter's denominator), so a quarter note takes ``positions_per_beat * d / 4``.
    """
    from fractions import Fraction

    beats: list[tuple[int, int]] = []
    bar, start = 0, Fraction(0)  # bars opened, the open bar's first quarter
    length = Fraction(0)
    for token in base_tokens:
        name, _, value = token.partition("_")
        if name == "Bar":
            bar, start = bar + 1, start + length
            length = Fraction(0)
        elif name == "TimeSig" and bar:
            numerator, denominator = (int(x) for x in value.split("/"))
            length = Fraction(4 * numerator, denominator)
            per_quarter = Fraction(positions_per_beat * denominator, 4)
            first = -(-start.numerator // start.denominator)  # the first whole quarter in the bar
            for quarter in range(first, -(-(start + length).numerator // (start + length).denominator)):
                beats.append((bar, int((quarter - start) * per_quarter)))
    return beats


def melody_notes(base_tokens: Sequence[str], program: int) -> list[LockedNote]:
    """The notes of token program ``program`` in a base-token sequence, in order."""
    notes: list[LockedNote] = []
    bar, position, current = 0, -1, None
    pitch: int | None = None
    for token in base_tokens:
        name, _, value = token.partition("_")
        if name == "Bar":
            bar, position = bar + 1, -1
        elif name == "Position":
            position = int(value)
        elif name == "Program":
            current = int(value)
        elif name == "Pitch" and current == program:
            pitch = int(value)
        elif name == "Duration" and current == program and pitch is not None:
            notes.append(LockedNote(bar, position, pitch, value))
            pitch = None
    return notes


@dataclass
class MelodyLock:
    """Keeps one voice of every decoding row to ``notes``."""

    program: int  # the token program the melody is written with
    notes: list[LockedNote]
    entering: frozenset[int]  # the other voices' token programs: each sings at the first melody onset
    kinds: np.ndarray  # (B,) kind of each base token
    values: list[str]  # (B,) each base token's value text
    entries: list[tuple[int, ...]]
    # (bar, position) → the pitch classes the other voices may strike there (a chord plan)
    chords: dict[tuple[int, int], frozenset[int]] = field(default_factory=dict)
    # (bar, position) → the pitch classes the lowest voice may strike there (the plan's root)
    bass_notes: dict[tuple[int, int], frozenset[int]] = field(default_factory=dict)
    bass: int | None = None  # the lowest voice's token program, when it is not the melody
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # token program → lowest, highest pitch
    _cache: dict[tuple[LockState, bytes], np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]], program: int,
              notes: Sequence[LockedNote], entering: Sequence[int] = (),
              chords: dict[tuple[int, int], frozenset[int]] | None = None,
              bass_notes: dict[tuple[int, int], frozenset[int]] | None = None,
              ranges: dict[int, tuple[int, int]] | None = None) -> MelodyLock:
        """``entering``: token programs of the voices that must all sound with the melody's
        first note (so that a harmonization has its ensemble from the start). ``chords``: the
        pitch classes the other voices may start a note on at a (bar, position), a plan of
        the harmony (``music.harmony.plan_chords``); elsewhere they are free. ``bass_notes``:
        the same for the lowest of the ``entering`` voices (the last in token order).
        ``ranges``: the pitches (lowest, highest) each other voice may sing, by token program."""
        kinds = np.array([_KINDS.get(t.partition("_")[0], _OTHER) for t in base_vocab], dtype=np.int64)
        values = [t.partition("_")[2] for t in base_vocab]
        others = frozenset(entering) - {program}
        bass = max(others) if others and max(others) > program else None
        return cls(program, list(notes), others, kinds, values, [tuple(e) for e in entries],
                   dict(chords or {}), dict(bass_notes or {}) if bass is not None else {}, bass,
                   {voice: r for voice, r in (ranges or {}).items() if voice != program})

    @cached_property
    def advancing(self) -> np.ndarray:
        """(V,) bool: the entries that move a row towards the melody's next note: a Position,
        or the melody's own voice (for a bar that runs too long to be closed yet)."""
        positions = set(np.flatnonzero(self.kinds == _POSITION).tolist())
        return ~self.silent | np.array([bool(positions.intersection(e)) for e in self.entries], dtype=bool)

    @cached_property
    def silent(self) -> np.ndarray:
        """(V,) bool: the entries that give the melody's voice no note."""
        mine = np.array([v == str(self.program) for v in self.values])  # (B,)
        own = set(np.flatnonzero((self.kinds == _PROGRAM) & mine).tolist())
        return np.array([not own.intersection(e) for e in self.entries], dtype=bool)

    def start(self, ids: Sequence[int]) -> LockState:
        """The state after ``ids`` (the style and key tokens); a refused id raises ValueError."""
        state = LockState(waiting=self.entering)
        for entry in ids:
            after = self.after_entry(state, int(entry))
            if after is None:
                raise ValueError(f"the prompt breaks the melody at id {entry}")
            state = after
        return state

    def after_entry(self, state: LockState, entry: int) -> LockState | None:
        """The state after ``entry``, or None when the entry breaks the melody."""
        for base in self.entries[entry]:
            after = self._after_base(state, base)
            if after is None:
                return None
            state = after
        return state

    def restrict(self, mask: np.ndarray, state: LockState) -> np.ndarray:
        """``mask`` (V,) narrowed to the entries that keep the melody (a new array)."""
        key = (state, np.packbits(mask).tobytes())
        kept = self._cache.get(key)
        if kept is None:
            kept = np.zeros_like(mask)
            for entry in np.flatnonzero(mask).tolist():
                kept[entry] = self.after_entry(state, entry) is not None
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = kept
        return kept

    def _after_base(self, state: LockState, base: int) -> LockState | None:
        kind = int(self.kinds[base])
        pending = self.notes[state.next_note] if state.next_note < len(self.notes) else None
        if kind in (_BAR, _POSITION, _EOS) and (state.phase != FREE or state.at_onset):
            return None  # the melody note due here is not written yet
        if kind in (_BAR, _POSITION, _EOS) and state.waiting and state.next_note >= 1:
            return None  # a voice has not entered with the melody's first note
        if kind == _BAR:
            if pending is not None and pending.bar <= state.bar:
                return None  # a melody note of this bar is still to come
            return replace(state, bar=state.bar + 1, position=-1)
        if kind == _POSITION:
            position = int(self.values[base])
            if pending is None or pending.bar != state.bar:
                return replace(state, position=position)
            if position > pending.position:
                return None  # past the melody's onset without its note
            return replace(state, position=position, at_onset=position == pending.position)
        if kind == _EOS:
            return state if pending is None else None
        if kind == _PROGRAM:
            program = int(self.values[base])
            if program == self.program:
                return replace(state, phase=PROGRAM, program=program) if state.at_onset else None
            if state.at_onset and program > self.program:
                return None  # voices of an onset come in program order: the melody's first
            entering = state.waiting and (state.at_onset if state.next_note == 0 else state.next_note == 1)
            waiting = state.waiting - {program} if entering else state.waiting
            return replace(state, program=program, waiting=waiting)
        if state.phase == FREE:
            if kind == _PITCH and (self.chords or self.ranges):
                pitch = int(self.values[base])
                low, high = self.ranges.get(state.program, (0, 127)) if self.ranges else (0, 127)
                if not low <= pitch <= high:
                    return None  # another voice out of its range
                plan = self.bass_notes if state.program == self.bass and self.bass_notes else self.chords
                allowed = plan.get((state.bar, state.position))
                if allowed is not None and pitch % 12 not in allowed:
                    return None  # another voice off the chord planned for this beat
            return state  # another voice's pitch, velocity or duration; Tempo, TimeSig...
        if kind == _PITCH and state.phase == PROGRAM and pending is not None \
                and int(self.values[base]) == pending.pitch:
            return replace(state, phase=PITCH)
        if kind == _VELOCITY and state.phase == PITCH:
            return replace(state, phase=VELOCITY)
        if kind == _DURATION and state.phase == VELOCITY and pending is not None \
                and self.values[base] == pending.duration:
            return replace(state, phase=FREE, at_onset=False, next_note=state.next_note + 1)
        return None


__all__ = ["LockState", "LockedNote", "MelodyLock", "beat_positions", "melody_line", "melody_notes"]
