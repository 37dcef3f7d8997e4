"""Voice leading the decoder enforces: no parallel fifths or octaves between two voices.

A chorale or a mass movement avoids two voices moving the same way from a fifth to a
fifth, or from an octave (or unison) to an octave; a model of 4 M parameters trained for
a few CPU hours does not learn the rule well (7.5 such motions per 100 voice-pair
motions in generated chorales against Bach's 1.9). The decoder therefore refuses, in
the styles that keep the rule, a sampled note that would make one with a voice that
starts a note at the same onset, and samples again without it.

The check follows ``composer.evaluate.voice_measures.parallel_perfects``: each voice is
read as one line (its highest note at an onset), and a motion is two voices both
changing pitch. A voice's previous pitch is its latest note before the onset, so a
motion after a rest counts too: the rule is a little stricter than the measure.

Like ``OnsetRules`` it works on base tokens, so a BPE entry holding several notes is
checked note by note; ``LineState`` is per decoding row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from composer.generate.voicing import BAR_START

PERFECT = frozenset({0, 7})  # interval classes: unison/octave, fifth
_BAR, _POSITION, _PROGRAM, _PITCH = range(4)


@dataclass(frozen=True)
class LineState:
    """Where a row stands: the open onset, each voice's pitch before it and at it."""

    position: int = BAR_START  # the open onset's position in its bar
    program: int | None = None  # the token program of the note being written
    before: dict[int, int] = field(default_factory=dict)  # voice → pitch of its latest note before the onset
    now: dict[int, int] = field(default_factory=dict)  # voice → highest pitch it starts at the onset


def is_parallel(voice_before: int, voice_now: int, other_before: int, other_now: int) -> bool:
    """Both voices move the same way from one perfect interval to the same one again."""
    if voice_before == voice_now or other_before == other_now:
        return False
    if (voice_now > voice_before) != (other_now > other_before):
        return False
    before = abs(voice_before - other_before) % 12
    return before in PERFECT and before == abs(voice_now - other_now) % 12


@dataclass(frozen=True)
class ParallelRule:
    """No parallel fifths or octaves among the voices written with ``programs``."""

    events: tuple[tuple[tuple[int, int], ...], ...]  # per entry: (kind, value) of its base tokens
    programs: frozenset[int]  # token programs that are voices under the rule

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]],
              programs: Iterable[int]) -> ParallelRule:
        kinds = {"Bar": _BAR, "Position": _POSITION, "Program": _PROGRAM, "Pitch": _PITCH}
        base: list[tuple[int, int] | None] = []
        for token in base_vocab:
            name, _, value = token.partition("_")
            kind = kinds.get(name)
            base.append(None if kind is None else (kind, int(value) if kind != _BAR else 0))
        events = tuple(tuple(e for e in (base[b] for b in entry) if e is not None) for entry in entries)
        return cls(events, frozenset(int(p) for p in programs))

    def start(self, ids: Iterable[int]) -> LineState:
        """The state after ``ids`` (a prompt)."""
        state = LineState()
        for entry in ids:
            state = self.after_entry(state, int(entry))
        return state

    def after_entry(self, state: LineState, entry: int) -> LineState:
        return self._walk(state, entry, check=False)[0]

    def breaks(self, state: LineState, entry: int) -> bool:
        """Whether ``entry`` writes a note in parallel fifths or octaves with another voice."""
        return self._walk(state, entry, check=True)[1]

    def _walk(self, state: LineState, entry: int, check: bool) -> tuple[LineState, bool]:
        position, program = state.position, state.program
        before, now = state.before, state.now
        copied = False
        for kind, value in self.events[entry]:
            if kind == _BAR or (kind == _POSITION and value != position):
                if now:
                    before, now, copied = {**before, **now}, {}, True
                position = BAR_START if kind == _BAR else value
            elif kind == _PROGRAM:
                program = value
            elif kind == _PITCH and program in self.programs:
                if check:
                    mine = before.get(program)
                    if mine is not None:
                        for other, pitch in now.items():
                            theirs = before.get(other)
                            if other != program and theirs is not None and \
                                    is_parallel(mine, value, theirs, pitch):
                                return state, True
                if value > now.get(program, -1):
                    if not copied:
                        before, now, copied = dict(before), dict(now), True
                    now[program] = value
        return LineState(position, program, before, now), False


# Styles whose voice leading avoids parallel perfects: the rule is on for them by default.
# Trecento and Monteverdi are left free (parallel fifths are part of the Trecento idiom,
# and the madrigals' 5.5 per 100 voice-pair motions are three times a chorale's).
STRICT_VOICE_LEADING_STYLES = frozenset({"bach", "palestrina"})

__all__ = ["STRICT_VOICE_LEADING_STYLES", "LineState", "ParallelRule", "is_parallel"]
