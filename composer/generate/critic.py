"""The critic: rank N candidate pieces and keep the best.

A candidate's score adds three things:

(a) the model's own style margin, ``log p(piece | style) − log p(piece | no style)`` per
    note. The caller computes it with the generator itself, read as a Bayesian classifier:
    how much more likely the wanted style makes the piece than no style at all;
(b) agreement with the wanted key: the share of sounding time on that key's scale;
(c) musical sanity: penalties for bars that repeat over and over, empty bars, chords a
    voice cannot sing or play, notes outside a voice's range, and voices of the style's
    ensemble that never sing (a chorale whose tenor never enters).

Only (b) and (c) are computed here, in numpy, from the score. ``composer evaluate``
judges style with a separate note-feature classifier trained on the corpus, so the critic
that picks a piece is never the judge that grades it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.music.facts import beat_chords, downbeats, pitch_class_durations, pitched_notes
from composer.music.harmony import CHORD_STATES, chord_classes
from composer.music.keys import scale_pitch_classes
from composer.music.voices import max_chord, out_of_range_share

if TYPE_CHECKING:
    import symusic

REPEATS_ALLOWED = 2  # a bar and one literal repeat are ordinary music; the third in a row is a loop
# every triad and seventh chord on every root, as pitch-class sets (``music.harmony``'s shapes)
CHORDS = frozenset(chord_classes(state) for state in range(CHORD_STATES))


@dataclass(frozen=True)
class CriticWeights:
    style: float = 1.0  # weight of the model's style margin (supplied by the caller, bits per note)
    key: float = 2.0  # weight of key agreement
    sanity: float = 1.0  # weight of the sanity penalty


@dataclass(frozen=True)
class Critique:
    key_agreement: float  # share of sounding time on the wanted key's scale, 0..1 (1.0 when key is None)
    repetition: float  # share of bars that are the 3rd or later identical bar in a run
    empty_bars: float  # share of bars with no note starting or sounding
    bad_chords: float  # share of onsets where a track starts more notes than max_chord(program) allows
    out_of_range: float  # share of notes outside their voice's range (with a 2-semitone margin)
    sanity_penalty: float  # sum of the sanity shares: the four above and missing_voices
    style_margin: float  # the caller's style term (0.0 if not given)
    total: float  # weights.style*style_margin + weights.key*key_agreement - weights.sanity*sanity_penalty
    missing_voices: float = 0.0  # share of the style's usual voices with no note (in sanity_penalty)


def critique(score: symusic.Score, key: tuple[int, int] | None,
             ranges: Mapping[str, tuple[int, int]] | None = None, style_margin: float = 0.0,
             weights: CriticWeights = CriticWeights(),  # frozen: one shared default is safe
             voices: int | None = None) -> Critique:
    """Judge one candidate; ``ranges`` maps a track name to its voice's (low, high) MIDI pitch,
    ``voices`` is the style's usual number of voices (None: not checked)."""
    agreement = key_agreement(score, key)
    repetition, empty = bar_shares(score)
    chords = bad_chord_share(score)
    outside = out_of_range_share(score, ranges or {})
    missing = missing_voice_share(score, voices)
    penalty = repetition + empty + chords + outside + missing
    total = weights.style * style_margin + weights.key * agreement - weights.sanity * penalty
    return Critique(key_agreement=agreement, repetition=repetition, empty_bars=empty, bad_chords=chords,
                    out_of_range=outside, sanity_penalty=penalty, style_margin=float(style_margin),
                    total=float(total), missing_voices=missing)


def missing_voice_share(score: symusic.Score, voices: int | None) -> float:
    """Share of ``voices`` (the style's usual count) that no pitched track with notes fills."""
    if not voices:
        return 0.0
    sounding = sum(1 for t in score.tracks if not t.is_drum and t.note_num() > 0)
    return max(0, voices - sounding) / voices


def best_candidate(critiques: Sequence[Critique]) -> int:
    """Index of the highest total; ties go to the lowest index (so a seed's choice is deterministic).

    A NaN total (say, a failed likelihood) ranks below every number.
    """
    if not critiques:
        raise ValueError("best_candidate needs at least one critique")

    def rank(index: int) -> float:
        total = critiques[index].total
        return -math.inf if math.isnan(total) else total

    # max keeps the first of equal keys, which is the lowest index
    return max(range(len(critiques)), key=rank)


def key_agreement(score: symusic.Score, key: tuple[int, int] | None) -> float:
    """Share of pitched sounding time on ``key``'s scale; 1.0 with no wanted key, 0.0 with no notes."""
    if key is None:
        return 1.0
    durations = pitch_class_durations(score)
    sounding = float(durations.sum())
    if sounding <= 0:
        return 0.0  # nothing sounds, so nothing agrees: an empty candidate must not look in key
    return float(durations[list(scale_pitch_classes(key))].sum()) / sounding


def chord_beats(score: symusic.Score, before: int | None = None) -> tuple[int, int]:
    """(beats sounding a whole chord, beats with notes sounding), over the quarter-note
    beats before tick ``before`` (None: every beat). A whole chord is three or more pitch
    classes of one triad or seventh chord (``CHORDS``); ``harmonize`` steers toward them."""
    notes = pitched_notes(score)
    if not len(notes):
        return 0, 0
    end = int((notes[:, 0] + notes[:, 1]).max())
    limit = end if before is None else min(before, end)
    tpq = max(1, score.tpq)
    heard = whole = 0
    for classes, _ in beat_chords(score, max(0, -(-limit // tpq))):  # the beats at ticks < limit
        if classes:
            heard += 1
            whole += len(classes) >= 3 and any(classes <= chord for chord in CHORDS)
    return whole, heard


def bar_shares(score: symusic.Score) -> tuple[float, float]:
    """(repetition, empty bars) as shares of the score's bars, drums included."""
    starts = downbeats(score)
    if starts.size == 0:
        return 0.0, 0.0
    stops = np.append(starts[1:], score.end())
    track, time, duration, pitch = _all_notes(score)
    repeated = 0
    empty = 0
    run = 1
    previous: bytes | None = None
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        onset = (time >= start) & (time < stop)
        # a note held over from an earlier bar still fills this one
        if not (onset | ((time < start) & (time + duration > start))).any():
            empty += 1
        content: bytes | None = None
        if onset.any():
            rows = np.stack([track[onset], time[onset] - start, pitch[onset]], axis=1)
            rows = rows[np.lexsort(rows.T[::-1])]
            # the bar's length is part of it, so a 3/4 bar never "repeats" a 4/4 one
            content = np.int64(stop - start).tobytes() + rows.tobytes()
        # a bar with no onsets restates nothing; emptiness has its own penalty
        run = run + 1 if content is not None and content == previous else 1
        if run > REPEATS_ALLOWED:
            repeated += 1
        previous = content
    bars = int(starts.size)
    return (repeated / bars if bars >= 2 else 0.0), empty / bars


def bad_chord_share(score: symusic.Score) -> float:
    """Share of (track, onset) pairs where the track starts more notes than its program allows."""
    onsets = 0
    bad = 0
    for track in score.tracks:
        if track.is_drum or track.note_num() == 0:
            continue  # a drum kit has no chord limit
        _, counts = np.unique(track.notes.numpy()["time"], return_counts=True)
        onsets += int(counts.size)
        limit = max_chord(track.program)
        if limit > 0:
            bad += int((counts > limit).sum())
    return bad / onsets if onsets else 0.0


def _all_notes(score: symusic.Score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track index, onset, duration, pitch) of every note, drums included, as int64 arrays."""
    parts: list[np.ndarray] = []
    for index, track in enumerate(score.tracks):
        if track.note_num() == 0:
            continue
        arrays = track.notes.numpy()
        parts.append(np.stack([np.full(arrays["time"].size, index), arrays["time"], arrays["duration"],
                               arrays["pitch"]], axis=1).astype(np.int64))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    rows = np.concatenate(parts)
    return rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]


__all__ = [
    "CriticWeights",
    "Critique",
    "bad_chord_share",
    "bar_shares",
    "best_candidate",
    "chord_beats",
    "critique",
    "key_agreement",
    "missing_voice_share",
]
