"""A line model mixed into sampling: each voice steps the way the style's voices step.

The default model writes about half the semitone steps of the music it learned from,
in every style, and leaps more (Bach's voices step by a semitone in 23 % of their steps,
the model's in 12 %; Irish tunes 17 % against 10 %); it even does so when sampled
plainly, token by token, without guidance or grammar: it knows the harmony better than
where each voice was. ``LinePrior`` multiplies the probability of every entry that gives
a voice its next note by exp(``weight`` × the step's calibration), the log-ratio of how
often the style's corpus and the model's own samples make that step, from a note on or
off the key's scale to one on or off it, clashing or not with a note another voice has
just struck (``music.lines.calibration``), and rescales
those entries so that together they keep the probability the transformer gave them: it
chooses among the notes, never between a note and a rest or a bar line. At weight 1 the
samples' steps match the corpus's, as far as each step can be judged on its own.

Like ``VoiceLeadingRule`` (whose ``LineState`` it reads) it works on base tokens; an
entry is judged by the first note it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from composer.generate.counterpoint import LineState, VoiceLeadingRule
from composer.music.lines import STEP_CLASSES, STEPS, clashes, on_scale, step_class

_OWN_PROGRAM = -1  # the entry's first note belongs to the program written before the entry


@dataclass(frozen=True)
class LinePrior:
    """Log-weights for the next entry of each decoding row, from the voices' last notes."""

    tracker: VoiceLeadingRule  # follows each voice's notes (no rule is checked)
    pitch: np.ndarray  # (V,) the first pitch an entry writes, -1 for none
    # program (_OWN_PROGRAM: entries that name none) → the entries whose first note is that
    # program's, as (those opening a new onset before it, those at the open onset): index arrays
    first_notes: dict[int, tuple[np.ndarray, np.ndarray]]
    calibration: np.ndarray  # (STEP_CLASSES, STEPS) log-weight of each step (music.lines.calibration)
    scale: np.ndarray  # (12,) bool: the pitch classes on the piece's key's scale
    weight: float

    @classmethod
    def build(cls, base_vocab: Sequence[str], entries: Sequence[tuple[int, ...]], programs: Iterable[int],
              calibration: np.ndarray, key: tuple[int, int], weight: float = 1.0) -> LinePrior:
        """``programs``: the token programs that are voices; ``calibration``: the style's
        ``music.lines.calibration``; ``key``: (mode, tonic) of the piece."""
        calibration = np.asarray(calibration, dtype=np.float64)
        if calibration.shape != (STEP_CLASSES, STEPS):
            raise ValueError(f"a line calibration is {STEP_CLASSES} × {STEPS}, not {calibration.shape}")
        programs = frozenset(int(p) for p in programs)
        size = len(entries)
        pitch = np.full(size, -1, dtype=np.int64)
        program = np.full(size, _OWN_PROGRAM, dtype=np.int64)
        new_onset = np.zeros(size, dtype=bool)
        for index, entry in enumerate(entries):
            for token in entry:
                name, _, value = base_vocab[token].partition("_")
                if name in ("Bar", "Position"):
                    new_onset[index] = True
                elif name == "Program":
                    program[index] = int(value)
                elif name == "Pitch":
                    pitch[index] = int(value)
                    break
        # per decoding step only these few index arrays are read, never the (V,) masks again
        first_notes = {}
        for voice in (_OWN_PROGRAM, *sorted(programs)):
            mine = (program == voice) & (pitch >= 0)
            first_notes[voice] = (np.flatnonzero(mine & new_onset), np.flatnonzero(mine & ~new_onset))
        return cls(VoiceLeadingRule.build(base_vocab, entries, programs), pitch, first_notes,
                   calibration, on_scale(key), float(weight))

    def start(self, ids: Iterable[int]) -> LineState:
        return self.tracker.start(ids)

    def after_entry(self, state: LineState, entry: int) -> LineState:
        return self.tracker.after_entry(state, entry)

    def log_weights(self, state: LineState) -> np.ndarray:
        """(V,) the calibration of the step each entry's first note makes; NaN where the
        entry writes no note, or its voice has no note before it or already one at this
        onset (a chord, not a step)."""
        out = np.full(self.pitch.shape, np.nan)
        merged = {**state.before, **state.now}  # each voice's last note once a new onset opens
        none = (np.zeros(0, dtype=np.int64),) * 2
        for voice in set(merged) | ({state.program} if state.program is not None else set()):
            named = self.first_notes.get(voice, none)
            unnamed = self.first_notes[_OWN_PROGRAM] if state.program == voice else none
            for fresh, previous in ((True, merged.get(voice)),
                                    (False, None if voice in state.now else state.before.get(voice))):
                if previous is None:
                    continue
                chosen = np.concatenate([named[not fresh], unnamed[not fresh]])
                if chosen.size == 0:
                    continue
                reached = self.pitch[chosen]
                # at a new onset no other voice has struck yet; at this one, those that have
                others = [] if fresh else [p for v, p in state.now.items() if v != voice]
                struck = np.array(others, dtype=np.int64)
                kind = (4 * clashes(reached, struck) + 2 * int(self.scale[previous % 12])
                        + self.scale[reached % 12])
                out[chosen] = self.calibration[kind, step_class(reached - previous)]
        return out

    def twist(self, scores: np.ndarray, allowed: np.ndarray, state: LineState) -> np.ndarray:
        """``scores`` (V,) logits with the prior mixed in: the allowed entries with a step
        gain ``weight`` × its calibration, shifted so that they keep their total probability."""
        steps = self.log_weights(state)
        judged = allowed & ~np.isnan(steps)
        if not judged.any() or self.weight == 0:
            return scores
        out = np.asarray(scores, dtype=np.float64).copy()
        logits = out[judged]
        gained = logits + self.weight * steps[judged]
        # log Σ p·w − log Σ p over the judged entries, so their total mass stays put
        out[judged] = gained - (_log_sum_exp(gained) - _log_sum_exp(logits))
        return out.astype(scores.dtype, copy=False)


def _log_sum_exp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


__all__ = ["LinePrior"]
