"""How melodic lines move: the steps from each note of a voice to the next.

A voice is read as one line, its highest note at each onset. ``LineCounts`` counts the
steps (in semitones, within an octave either way) of every voice of a set of pieces: a
style's corpus, or the samples a model writes in that style. ``calibration`` compares
the two: the log-ratio of how often the corpus and the model make each step, which
``generate.line_prior`` mixes into sampling so the model's lines step as the corpus's do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import symusic

STEP_LIMIT = 12  # steps beyond an octave are counted as an octave
STEPS = 2 * STEP_LIMIT + 1
LINES_FORMAT = 1
SMOOTHING = 0.5  # added to every step's count: a step never seen is rare, not impossible


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
    """Steps in semitones → their index in ``LineCounts.counts``, clipped to an octave."""
    return np.clip(step, -STEP_LIMIT, STEP_LIMIT) + STEP_LIMIT


@dataclass
class LineCounts:
    """How many steps of each size, from an octave down to an octave up: (STEPS,)."""

    counts: np.ndarray

    @classmethod
    def empty(cls) -> LineCounts:
        return cls(np.zeros(STEPS))

    def add(self, score: symusic.Score) -> None:
        """Count the steps of every voice of ``score``."""
        for line in voice_lines(score):
            np.add.at(self.counts, step_class(np.diff(line)), 1)

    def log_probabilities(self) -> np.ndarray:
        """(STEPS,) log-probability of each step, smoothed."""
        smoothed = self.counts + SMOOTHING
        return np.log(smoothed / smoothed.sum())

    def to_json(self) -> dict[str, Any]:
        return {"format": LINES_FORMAT, "steps": self.counts.astype(int).tolist()}

    @classmethod
    def from_json(cls, data: Any) -> LineCounts:
        """Counts as ``to_json`` wrote them; ``ValueError`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != LINES_FORMAT:
            raise ValueError(f"not line counts of format {LINES_FORMAT}")
        counts = np.asarray(data.get("steps"), dtype=np.float64)
        if counts.shape != (STEPS,) or not np.isfinite(counts).all() or (counts < 0).any():
            raise ValueError(f"line counts need {STEPS} counts, none negative")
        return cls(counts)


def count_lines(scores: Iterable[symusic.Score]) -> LineCounts:
    """The steps of every voice of every score."""
    counts = LineCounts.empty()
    for score in scores:
        counts.add(score)
    return counts


def calibration(corpus: LineCounts, model: LineCounts) -> np.ndarray:
    """(STEPS,) log p_corpus(step) − log p_model(step): what to add to a step's log-probability
    so that a model whose samples step like ``model`` steps like ``corpus``."""
    return corpus.log_probabilities() - model.log_probabilities()


__all__ = ["LINES_FORMAT", "STEPS", "STEP_LIMIT", "LineCounts", "calibration", "count_lines", "step_class",
           "top_line", "voice_lines"]
