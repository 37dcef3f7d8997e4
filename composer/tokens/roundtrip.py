"""Round-trip check: do a score's notes survive tokens → ids → score?

The reference is computed here, independently of miditok: every source note is put on
the tokenizer's grid (onset to the nearest grid step of the meter it falls in, duration
to the nearest duration token) and compared, as a multiset of (pitch, onset, duration),
with the notes decoded from the ids. Tracks are ignored: parts that share a program are
one stream in the tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.tokens.tokenizer import Tokenizer

if TYPE_CHECKING:
    import symusic

Note = tuple[int, int, int]  # (pitch, onset, duration) in units of 1/(4 * positions_per_beat) quarter


@dataclass
class RoundTrip:
    source_notes: int  # notes in the source score
    decoded_notes: int  # notes decoded from its ids
    matched: int  # notes equal in pitch, onset and duration on the grid

    @property
    def ratio(self) -> float:
        return self.matched / self.source_notes if self.source_notes else 1.0

    def __add__(self, other: RoundTrip) -> RoundTrip:
        return RoundTrip(self.source_notes + other.source_notes,
                         self.decoded_notes + other.decoded_notes, self.matched + other.matched)


def _duration_beats(tok: Tokenizer) -> np.ndarray:
    s = tok.settings
    fine = np.arange(1, s.long_note_beats * s.positions_per_beat) / s.positions_per_beat
    coarse = s.long_note_beats + np.arange(0, (s.max_note_beats - s.long_note_beats) * 4 + 1) / 4
    return np.concatenate([fine, coarse])


def quantized_notes(tok: Tokenizer, score: symusic.Score) -> Counter[Note]:
    """The source notes on the tokenizer's grid (pitches outside its range left out)."""
    units_per_quarter = 4 * tok.settings.positions_per_beat
    lo, hi = tok.settings.pitch_range
    supported = set(tok.grammar.meters)
    sections = [(0, 4)] + [(ts.time, ts.denominator) for ts in score.time_signatures
                           if f"{ts.numerator}/{ts.denominator}" in supported]
    starts = np.array([t for t, _ in sections], dtype=np.float64) / score.ticks_per_quarter
    dens = np.array([d for _, d in sections])
    durations = _duration_beats(tok)
    out: Counter[Note] = Counter()
    for track in score.tracks:
        if track.is_drum or not len(track.notes):
            continue
        notes = track.notes.numpy()
        keep = (notes["pitch"] >= lo) & (notes["pitch"] <= hi)
        onset = notes["time"][keep] / score.ticks_per_quarter  # quarters
        length = notes["duration"][keep] / score.ticks_per_quarter
        section = np.searchsorted(starts, onset, side="right") - 1
        beat = 4.0 / dens[section]  # quarters per beat of the meter each note is in
        step = beat / tok.settings.positions_per_beat
        start = starts[section]
        grid_onset = start + np.round((onset - start) / step) * step
        nearest = np.abs(length[:, None] / beat[:, None] - durations[None, :]).argmin(axis=1)
        grid_length = durations[nearest] * beat
        for p, o, d in zip(notes["pitch"][keep].tolist(),
                           np.rint(grid_onset * units_per_quarter).astype(int).tolist(),
                           np.rint(grid_length * units_per_quarter).astype(int).tolist(), strict=True):
            out[(p, o, d)] += 1
    return out


def score_notes(tok: Tokenizer, score: symusic.Score) -> Counter[Note]:
    """A (decoded) score's notes in the same units as ``quantized_notes``."""
    scale = 4 * tok.settings.positions_per_beat / score.ticks_per_quarter
    out: Counter[Note] = Counter()
    for track in score.tracks:
        if not len(track.notes):
            continue
        notes = track.notes.numpy()
        for p, o, d in zip(notes["pitch"].tolist(), np.rint(notes["time"] * scale).astype(int).tolist(),
                           np.rint(notes["duration"] * scale).astype(int).tolist(), strict=True):
            out[(p, o, d)] += 1
    return out


def round_trip(tok: Tokenizer, score: symusic.Score, style: str) -> RoundTrip:
    """Encode ``score`` with ``style``, decode the ids, and count the notes that survived."""
    source = quantized_notes(tok, score)
    decoded = score_notes(tok, tok.decode_ids(tok.encode_score(score, style)))
    return RoundTrip(source_notes=sum(source.values()) + _outside_range(tok, score),
                     decoded_notes=sum(decoded.values()),
                     matched=sum((source & decoded).values()))


def _outside_range(tok: Tokenizer, score: symusic.Score) -> int:
    lo, hi = tok.settings.pitch_range
    total = 0
    for track in score.tracks:
        if len(track.notes) and not track.is_drum:
            pitch = track.notes.numpy()["pitch"]
            total += int(((pitch < lo) | (pitch > hi)).sum())
    return total
