"""How melodic lines move: the steps from each note of a voice to the next.

A voice is read as one line, its highest note at each onset. ``LineCounts`` counts the
steps (in semitones, within an octave either way) of every voice of a set of pieces: a
style's corpus, or the samples a model writes in that style. Each step is counted by
whether the note it leaves and the note it reaches are on the scale of the piece's key
(``music.keys.scale_pitch_classes``; minor with its raised sixth and seventh), so a
semitone from the seventh degree to the tonic is told from a chromatic slide off the
scale, and by whether the note it reaches is struck a semitone (interval class 1) from a
note another voice starts at the same onset: a clash. ``calibration`` compares the two
counts: the log-ratio of how often the corpus and the model make each (class, step),
which ``generate.line_prior`` mixes into sampling so the model's lines step, and clash,
as the corpus's do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.music.facts import key_index
from composer.music.keys import scale_pitch_classes

if TYPE_CHECKING:
    import symusic

STEP_LIMIT = 12  # steps beyond an octave are counted as an octave
STEPS = 2 * STEP_LIMIT + 1
# 4 × (reached a semitone from another voice's note struck with it) + 2 × (left on the
# scale) + (reached on the scale)
STEP_CLASSES = 8
CLASHING = (1, 11)  # semitones mod 12 apart: a minor second (ninth) or a major seventh
LINES_FORMAT = 3
SMOOTHING = 0.5  # added to every count: a step never seen is rare, not impossible


def top_line(onsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """The highest pitch at each onset of one voice, from notes sorted by (onset, pitch);
    any array in that order gives its value at each onset's top note."""
    if onsets.size == 0:
        return pitches
    last_of_onset = np.append(onsets[1:] != onsets[:-1], True)
    return pitches[last_of_onset]


def voice_lines(score: symusic.Score) -> list[np.ndarray]:
    """Each pitched track's top line: its pitches in time order."""
    return [pitches for _, pitches in _top_lines(score)]


def _top_lines(score: symusic.Score) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pitched track's top line: (onsets, pitches) in time order."""
    lines = []
    for track in score.tracks:
        if track.is_drum or track.note_num() == 0:
            continue
        arrays = track.notes.numpy()
        order = np.lexsort((arrays["pitch"], arrays["time"]))
        onsets, pitches = arrays["time"][order].astype(np.int64), arrays["pitch"][order].astype(np.int64)
        lines.append((top_line(onsets, onsets), top_line(onsets, pitches)))
    return lines


def clashes(pitches: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N,) bool: which of ``pitches`` lie a semitone (mod 12) from any of ``others``."""
    if others.size == 0:
        return np.zeros(pitches.shape, dtype=bool)
    return np.isin(np.abs(pitches[:, None] - others[None, :]) % 12, CLASHING).any(axis=1)


def _struck_clashes(lines: list[tuple[np.ndarray, np.ndarray]], score: symusic.Score
                    ) -> list[np.ndarray]:
    """Per line, (len - 1,) bool: whether each step's note is struck a semitone from a note
    that another pitched track starts at the same onset."""
    tracks = [t for t in score.tracks if not t.is_drum and t.note_num()]
    if len(tracks) < 2:
        return [np.zeros(max(0, onsets.size - 1), dtype=bool) for onsets, _ in lines]
    notes = [t.notes.numpy() for t in tracks]
    time = np.concatenate([n["time"] for n in notes]).astype(np.int64)
    pitch = np.concatenate([n["pitch"] for n in notes]).astype(np.int64)
    owner = np.concatenate([np.full(n["time"].size, i) for i, n in enumerate(notes)])
    order = np.argsort(time, kind="stable")
    time, pitch, owner = time[order], pitch[order], owner[order]
    found = []
    for index, (onsets, pitches) in enumerate(lines):
        reached, heights = onsets[1:], pitches[1:]
        first = np.searchsorted(time, reached, side="left")
        last = np.searchsorted(time, reached, side="right")
        flags = np.zeros(reached.size, dtype=bool)
        for j in np.flatnonzero(last - first > 1):  # another note starts at that onset
            span = slice(first[j], last[j])
            others = pitch[span][owner[span] != index]
            flags[j] = bool(clashes(heights[j:j + 1], others)[0])
        found.append(flags)
    return found


def step_class(step: np.ndarray | int) -> np.ndarray:
    """Steps in semitones → their column in ``LineCounts.counts``, clipped to an octave."""
    return np.clip(step, -STEP_LIMIT, STEP_LIMIT) + STEP_LIMIT


def on_scale(key: tuple[int, int]) -> np.ndarray:
    """(12,) bool: which pitch classes are on ``key``'s scale."""
    mask = np.zeros(12, dtype=bool)
    mask[list(scale_pitch_classes(key))] = True
    return mask


@dataclass
class LineCounts:
    """Steps counted by class and size (an octave down to an octave up): (STEP_CLASSES, STEPS)."""

    counts: np.ndarray

    @classmethod
    def empty(cls) -> LineCounts:
        return cls(np.zeros((STEP_CLASSES, STEPS)))

    def add(self, score: symusic.Score, key: tuple[int, int] | None = None) -> None:
        """Count the steps of every voice of ``score``, in ``key`` (None: the key
        ``music.facts.key_index`` hears; a score with no key heard is skipped)."""
        key = key if key is not None else key_index(score)
        if key is None:
            return
        scale = on_scale(key)
        lines = _top_lines(score)
        for (_, line), clash in zip(lines, _struck_clashes(lines, score), strict=True):
            kind = 4 * clash + 2 * scale[line[:-1] % 12] + scale[line[1:] % 12]
            np.add.at(self.counts, (kind, step_class(np.diff(line))), 1)

    def log_probabilities(self) -> np.ndarray:
        """(STEP_CLASSES, STEPS) log-probability of each (class, step), smoothed."""
        smoothed = self.counts + SMOOTHING
        return np.log(smoothed / smoothed.sum())

    def to_json(self) -> dict[str, Any]:
        return {"format": LINES_FORMAT, "steps": self.counts.astype(int).tolist()}

    @classmethod
    def from_json(cls, data: Any) -> LineCounts:
        """Counts as ``to_json`` wrote them; ``ValueError`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != LINES_FORMAT:
            raise ValueError(f"not line counts of format {LINES_FORMAT}")
        try:
            counts = np.asarray(data.get("steps"), dtype=np.float64)
        except (TypeError, ValueError):
            counts = np.zeros(0)
        if counts.shape != (STEP_CLASSES, STEPS) or not np.isfinite(counts).all() or (counts < 0).any():
            raise ValueError(f"line counts need {STEP_CLASSES} × {STEPS} counts, none negative")
        return cls(counts)


def count_lines(scores: Iterable[symusic.Score]) -> LineCounts:
    """The steps of every voice of every score, each in the key heard in it."""
    counts = LineCounts.empty()
    for score in scores:
        counts.add(score)
    return counts


def calibration(corpus: LineCounts, model: LineCounts) -> np.ndarray:
    """(STEP_CLASSES, STEPS) log p_corpus − log p_model of each (class, step): what to
    add to a step's log-probability so that a model whose samples step like ``model``
    steps like ``corpus``."""
    return corpus.log_probabilities() - model.log_probabilities()


__all__ = ["CLASHING", "LINES_FORMAT", "STEPS", "STEP_CLASSES", "STEP_LIMIT", "LineCounts", "calibration",
           "clashes", "count_lines", "on_scale", "step_class", "top_line", "voice_lines"]
