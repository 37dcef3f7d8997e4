"""Facts about a score that the corpus and the evaluation need: bars, meters, key, identity."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import symusic

FINGERPRINT_GRID = 12  # steps per quarter note: sixteenths and triplets both land on it


def downbeats(score: symusic.Score) -> np.ndarray:
    """Tick of every bar line before the score's end, from its time signatures."""
    end = score.end()
    if end <= 0:
        return np.zeros(0, dtype=np.int64)
    beats = np.asarray(score.get_downbeats(), dtype=np.int64)
    beats = beats[beats < end]
    if beats.size == 0 or beats[0] != 0:
        beats = np.concatenate([[0], beats])
    return beats


def count_bars(score: symusic.Score) -> int:
    return int(downbeats(score).size)


def time_signature_names(score: symusic.Score) -> list[str]:
    """Distinct meters in order of appearance, e.g. ``["4/4", "3/4"]``; 4/4 if none."""
    names: list[str] = []
    for ts in score.time_signatures:
        name = f"{ts.numerator}/{ts.denominator}"
        if name not in names:
            names.append(name)
    return names or ["4/4"]


def pitched_notes(score: symusic.Score) -> np.ndarray:
    """All non-drum notes as a (N, 3) int64 array of (onset, duration, pitch) in ticks."""
    rows = []
    for track in score.tracks:
        if track.is_drum or track.note_num() == 0:
            continue
        arrays = track.notes.numpy()
        rows.append(np.stack([arrays["time"], arrays["duration"], arrays["pitch"]], axis=1))
    if not rows:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(rows).astype(np.int64)


def notes_fingerprint(score: symusic.Score) -> str:
    """sha256 of the pitched notes on a coarse grid, independent of tracks and tpq.

    Two files with the same notes (a chorale stored twice) get the same fingerprint.
    """
    notes = pitched_notes(score)
    grid = np.rint(notes[:, :2] * FINGERPRINT_GRID / max(1, score.tpq)).astype(np.int64)
    rows = np.concatenate([grid, notes[:, 2:]], axis=1)
    rows = rows[np.lexsort(rows.T[::-1])]
    return hashlib.sha256(rows.tobytes()).hexdigest()


def pitch_class_durations(score: symusic.Score) -> np.ndarray:
    """Total sounding ticks per pitch class (12,)."""
    notes = pitched_notes(score)
    return np.bincount(notes[:, 2] % 12, weights=notes[:, 1], minlength=12)


def estimate_key(score: symusic.Score) -> str | None:
    """The most likely key by music21's Krumhansl-Schmuckler analysis, e.g. ``"D major"``.

    The analysis only needs pitch-class weights, so it runs on a 12-note stream built
    from the score's pitch-class durations instead of converting the whole score.
    """
    weights = pitch_class_durations(score)
    if weights.sum() <= 0:
        return None
    import music21

    summary = music21.stream.Stream()
    scale = weights / weights.max() * 16.0  # quarter lengths; only the proportions matter
    for pitch_class, quarter_length in enumerate(scale):
        if quarter_length > 0:
            note = music21.note.Note(60 + pitch_class)
            note.quarterLength = float(quarter_length)
            summary.append(note)
    found = summary.analyze("key")
    return f"{found.tonic.name.replace('-', 'b')} {found.mode}"
