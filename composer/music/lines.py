"""How melodic lines move: the steps from each note of a voice to the next.

A voice is read as one line, its highest note at each onset. ``LineCounts`` counts the
steps (in semitones, within an octave either way) of every voice of a set of pieces: a
style's corpus, or the samples a model writes in that style. Each step is counted by
whether the note it leaves and the note it reaches are on the scale of the piece's key
(``music.keys.scale_pitch_classes``; minor with its raised sixth and seventh), so a
semitone from the seventh degree to the tonic is told from a chromatic slide off the
scale. ``calibration`` compares the two counts: the log-ratio of how often the corpus and
the model make each (scale class, step), which ``generate.line_prior`` mixes into
sampling so the model's lines step as the corpus's do.
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
# 2 × (left on the scale) + (reached on the scale): off → off, off → on, on → off, on → on
SCALE_CLASSES = 4
LINES_FORMAT = 2
SMOOTHING = 0.5  # added to every count: a step never seen is rare, not impossible


def top_line(onsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """The highest pitch at each onset of one voice, from notes sorted by (onset, pitch)."""
    if onsets.size == 0:
        return pitches
    last_of_onset = np.append(onsets[1:] != onsets[:-1], True)
    return pitches[last_of_onset]


def voice_lines(score: symusic.Score) -> list[np.ndarray]:
    """Each pitched track's top line: its pitches in time order."""
    lines = []
    for track in score.tracks:
        if track.is_drum or track.note_num() == 0:
            continue
        arrays = track.notes.numpy()
        order = np.lexsort((arrays["pitch"], arrays["time"]))
        lines.append(top_line(arrays["time"][order], arrays["pitch"][order].astype(np.int64)))
    return lines


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
    """Steps counted by scale class and size (an octave down to an octave up): (SCALE_CLASSES, STEPS)."""

    counts: np.ndarray

    @classmethod
    def empty(cls) -> LineCounts:
        return cls(np.zeros((SCALE_CLASSES, STEPS)))

    def add(self, score: symusic.Score, key: tuple[int, int] | None = None) -> None:
        """Count the steps of every voice of ``score``, in ``key`` (None: the key
        ``music.facts.key_index`` hears; a score with no key heard is skipped)."""
        key = key if key is not None else key_index(score)
        if key is None:
            return
        scale = on_scale(key)
        for line in voice_lines(score):
            kind = 2 * scale[line[:-1] % 12] + scale[line[1:] % 12]
            np.add.at(self.counts, (kind, step_class(np.diff(line))), 1)

    def log_probabilities(self) -> np.ndarray:
        """(SCALE_CLASSES, STEPS) log-probability of each (scale class, step), smoothed."""
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
        if counts.shape != (SCALE_CLASSES, STEPS) or not np.isfinite(counts).all() or (counts < 0).any():
            raise ValueError(f"line counts need {SCALE_CLASSES} × {STEPS} counts, none negative")
        return cls(counts)


def count_lines(scores: Iterable[symusic.Score]) -> LineCounts:
    """The steps of every voice of every score, each in the key heard in it."""
    counts = LineCounts.empty()
    for score in scores:
        counts.add(score)
    return counts


def calibration(corpus: LineCounts, model: LineCounts) -> np.ndarray:
    """(SCALE_CLASSES, STEPS) log p_corpus − log p_model of each (scale class, step): what to
    add to a step's log-probability so that a model whose samples step like ``model``
    steps like ``corpus``."""
    return corpus.log_probabilities() - model.log_probabilities()


__all__ = ["LINES_FORMAT", "SCALE_CLASSES", "STEPS", "STEP_LIMIT", "LineCounts", "calibration", "count_lines",
           "on_scale", "step_class", "top_line", "voice_lines"]
