"""Musical features computed from the notes of a score, for judging generated music.

Everything here looks at notes (pitches, onsets, durations), never at tokens or
instrument programs, so that a judge built on these features is independent of the
tokenizer and cannot be fooled by the instrument a style is played on. Pitch classes are
taken relative to the analysed tonic: the model is trained on transposed copies, so the
key it writes in says nothing about style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.music.facts import downbeats, key_index
from composer.music.lines import top_line

if TYPE_CHECKING:
    import symusic

# note lengths and inter-onset intervals, in quarter notes: the edges sit between the
# values music actually uses (1/4, 1/3, 1/2, 3/4, 1, 3/2, 2, 3, 4)
LENGTH_EDGES = np.array([0.0, 0.29, 0.4, 0.6, 0.85, 1.2, 1.7, 2.5, 3.5, 5.0, np.inf])
POSITION_STEPS = 12  # onsets within a beat, on a grid of twelfths (sixteenths and triplets)
BAR_PARTS = 8  # onsets within a bar, in eighths of the bar
INTERVAL_LIMIT = 12  # melodic intervals beyond an octave are counted as an octave


@dataclass(frozen=True)
class NoteTable:
    """The pitched notes of a score in quarter-note units, sorted by (onset, pitch)."""

    onsets: np.ndarray  # (N,) float, quarter notes
    lengths: np.ndarray  # (N,) float, quarter notes
    pitches: np.ndarray  # (N,) int
    voices: np.ndarray  # (N,) int, index of the track
    bar_position: np.ndarray  # (N,) float in [0, 1): where in its bar each note starts
    tonic: int  # analysed tonic pitch class (0 when there are no notes)
    minor: bool

    def __len__(self) -> int:
        return int(self.pitches.size)


def note_table(score: symusic.Score) -> NoteTable:
    """The score's pitched notes, ready for the feature functions below."""
    tpq = max(1, score.tpq)
    rows, voices = [], []
    for number, track in enumerate(t for t in score.tracks if not t.is_drum and t.note_num()):
        arrays = track.notes.numpy()
        rows.append(np.stack([arrays["time"], arrays["duration"], arrays["pitch"]], axis=1))
        voices.append(np.full(len(arrays["time"]), number))
    if not rows:
        empty = np.zeros(0)
        return NoteTable(empty, empty, empty.astype(int), empty.astype(int), empty, 0, False)
    notes = np.concatenate(rows).astype(np.int64)  # (N, 3) ticks, ticks, pitch
    voice = np.concatenate(voices)
    order = np.lexsort((notes[:, 2], notes[:, 0]))
    notes, voice = notes[order], voice[order]
    bars = downbeats(score)
    bar_of = np.clip(np.searchsorted(bars, notes[:, 0], side="right") - 1, 0, max(0, bars.size - 1))
    bar_end = np.append(bars[1:], max(int(score.end()), int(bars[-1]) + tpq) if bars.size else tpq)
    start = bars[bar_of] if bars.size else np.zeros(len(notes))
    span = np.maximum(bar_end[bar_of] - start, 1) if bars.size else np.full(len(notes), 4 * tpq)
    found = key_index(score)
    mode, tonic = found if found is not None else (0, 0)
    return NoteTable(onsets=notes[:, 0] / tpq, lengths=notes[:, 1] / tpq, pitches=notes[:, 2],
                     voices=voice, bar_position=np.clip((notes[:, 0] - start) / span, 0, 0.999),
                     tonic=tonic, minor=bool(mode))


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(float)


def pitch_class_histogram(table: NoteTable) -> np.ndarray:
    """(12,) share of notes on each pitch class, counted from the tonic (0 = tonic)."""
    return _normalised(np.bincount((table.pitches - table.tonic) % 12, minlength=12).astype(float))


def length_histogram(lengths: np.ndarray) -> np.ndarray:
    """(10,) share of durations in each of the LENGTH_EDGES bins."""
    return _normalised(np.histogram(lengths, bins=LENGTH_EDGES)[0].astype(float))


def inter_onset_intervals(table: NoteTable) -> np.ndarray:
    """Gaps between successive distinct onsets, in quarter notes."""
    return np.diff(np.unique(table.onsets))


def polyphony(table: NoteTable) -> np.ndarray:
    """Number of notes sounding at each distinct onset: (onsets,)."""
    if len(table) == 0:
        return np.zeros(0)
    moments = np.unique(table.onsets)  # (M,)
    ends = table.onsets + table.lengths
    started = np.searchsorted(np.sort(table.onsets), moments, side="right")  # (M,)
    ended = np.searchsorted(np.sort(ends), moments, side="right")  # (M,)
    return (started - ended).astype(float)


def melodic_intervals(table: NoteTable) -> np.ndarray:
    """Steps between successive top notes within each part, in semitones."""
    steps = []
    for voice in np.unique(table.voices):
        mine = table.voices == voice
        # the top note of each chord is the part's line (notes are sorted by onset, pitch)
        steps.append(np.diff(top_line(table.onsets[mine], table.pitches[mine])))
    return np.concatenate(steps) if steps else np.zeros(0)


def style_features(table: NoteTable) -> np.ndarray:
    """(FEATURE_SIZE,) the feature vector the style classifier sees."""
    intervals = melodic_intervals(table)
    clipped = np.clip(intervals, -INTERVAL_LIMIT, INTERVAL_LIMIT) + INTERVAL_LIMIT
    interval_hist = _normalised(np.bincount(clipped.astype(int), minlength=2 * INTERVAL_LIMIT + 1)
                                .astype(float))
    beat_position = np.rint((table.onsets % 1.0) * POSITION_STEPS).astype(int) % POSITION_STEPS
    position_hist = _normalised(np.bincount(beat_position, minlength=POSITION_STEPS).astype(float))
    bar_hist = _normalised(np.bincount((table.bar_position * BAR_PARTS).astype(int), minlength=BAR_PARTS)
                           .astype(float))
    voices = polyphony(table)
    has_notes = len(table) > 0
    duration = float(table.onsets.max() + table.lengths.max()) if has_notes else 1.0
    texture = np.array([
        float(table.minor),
        voices.mean() / 4 if voices.size else 0.0,
        voices.max() / 8 if voices.size else 0.0,
        np.unique(table.voices).size / 4,
        float(np.ptp(table.pitches)) / 48 if has_notes else 0.0,
        (table.pitches.mean() - 60) / 24 if has_notes else 0.0,
        table.pitches.std() / 12 if has_notes else 0.0,
        np.abs(intervals).mean() / 12 if intervals.size else 0.0,
        len(table) / max(duration, 1.0) / 4,
        float(np.mean(voices > 1)) if voices.size else 0.0,
    ])
    return np.concatenate([pitch_class_histogram(table), interval_hist, length_histogram(table.lengths),
                           length_histogram(inter_onset_intervals(table)), position_hist, bar_hist,
                           texture])


FEATURE_SIZE = 12 + (2 * INTERVAL_LIMIT + 1) + 2 * (LENGTH_EDGES.size - 1) + POSITION_STEPS + BAR_PARTS + 10


def distribution_features(table: NoteTable) -> dict[str, np.ndarray]:
    """The MGEval-style features compared between generated and real music, per piece."""
    gaps = inter_onset_intervals(table)
    voices = polyphony(table)
    return {
        "pitch_class_histogram": pitch_class_histogram(table),
        "pitch_range": np.array([float(np.ptp(table.pitches)) if len(table) else 0.0]),
        "inter_onset_interval": np.array([gaps.mean() if gaps.size else 0.0]),
        "note_length_histogram": length_histogram(table.lengths),
        "polyphony": np.array([voices.mean() if voices.size else 0.0]),
    }


__all__ = ["FEATURE_SIZE", "NoteTable", "distribution_features", "inter_onset_intervals",
           "length_histogram", "melodic_intervals", "note_table", "pitch_class_histogram", "polyphony",
           "style_features"]
