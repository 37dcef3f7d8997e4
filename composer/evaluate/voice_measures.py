"""Voice measures: does each part of a piece behave like a voice of its style?

Counts how many voices a piece has, whether singers and winds stay one note at a time,
the biggest chord a string plays on one track, how many notes leave a voice's usual
range (a table of 5th-95th percentile pitches per voice role built from real pieces),
how often two voices move in parallel fifths or octaves, and how each line moves (its
share of semitone steps, its mean interval). ``composer evaluate``
computes them for the generated pieces and for real test pieces of the same style, so
each generated number is read next to the corpus's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.music.lines import CLASHING, voice_lines
from composer.music.voices import is_monophonic_voice, out_of_range_share

if TYPE_CHECKING:
    import symusic

STRING_PROGRAMS = range(40, 44)  # violin, viola, cello, contrabass
_CHUNK = 256  # sample times handled at once, to bound the (times x notes) mask's memory


@dataclass(frozen=True)
class _Notes:
    """One track's sounding notes, sorted by start."""

    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray


def _notes(track: symusic.Track) -> _Notes:
    arrays = track.notes.numpy()
    start = arrays["time"].astype(np.int64)
    duration = arrays["duration"].astype(np.int64)
    pitch = arrays["pitch"].astype(np.int64)  # int8 in symusic: differences would wrap
    keep = duration > 0  # a zero-length note never sounds
    start, end, pitch = start[keep], (start + duration)[keep], pitch[keep]
    order = np.lexsort((end, start))
    return _Notes(start[order], end[order], pitch[order])


def _pitched_tracks(score: symusic.Score) -> list[symusic.Track]:
    return [t for t in score.tracks if not t.is_drum and len(t.notes) > 0]


def voice_count(score: symusic.Score) -> int:
    """Pitched (non-drum) tracks with at least one note."""
    return len(_pitched_tracks(score))


def is_monophonic(track: symusic.Track, tpq: int) -> bool:
    """Whether no two notes of ``track`` overlap in time.

    A note may start when the previous one ends; an overlap shorter than a 64th note
    (``tpq // 16`` ticks) is legato playing, not two notes at once.
    """
    notes = _notes(track)
    if len(notes.start) < 2:
        return True
    # Against the latest end so far, not just the previous note's: a long note can span
    # several short ones.
    overlap = np.maximum.accumulate(notes.end)[:-1] - notes.start[1:]
    legato = max(tpq // 16, 1)
    return not bool(np.any(overlap >= legato))


def largest_chord(track: symusic.Track) -> int:
    """The most notes of ``track`` sounding at one instant (a note ending at t is not sounding at t)."""
    notes = _notes(track)
    if len(notes.start) == 0:
        return 0
    times = np.concatenate([notes.start, notes.end])
    deltas = np.concatenate([np.ones_like(notes.start), -np.ones_like(notes.end)])
    # At equal times the -1s sort first, so a note ending at t is gone before one starting at t.
    order = np.lexsort((deltas, times))
    return int(np.cumsum(deltas[order]).max())


def _top_pitch_at(notes: _Notes, times: np.ndarray) -> np.ndarray:
    """The highest pitch sounding at each of ``times`` (sorted), -1 where none sounds."""
    out = np.full(len(times), -1, dtype=np.int64)
    for first in range(0, len(times), _CHUNK):
        chunk = times[first:first + _CHUNK]
        # Only notes that overlap the chunk's span can sound in it.
        near = (notes.start <= chunk[-1]) & (notes.end > chunk[0])
        if not near.any():
            continue
        start, end, pitch = notes.start[near], notes.end[near], notes.pitch[near]
        sounding = (start[None, :] <= chunk[:, None]) & (end[None, :] > chunk[:, None])
        out[first:first + _CHUNK] = np.where(sounding, pitch[None, :], -1).max(axis=1)
    return out


def top_line(track: symusic.Track, times: np.ndarray) -> np.ndarray:
    """The highest pitch of ``track`` sounding at each of ``times`` (sorted ticks), -1 where none."""
    return _top_pitch_at(_notes(track), times)


def parallel_perfects(score: symusic.Score) -> tuple[int, int]:
    """(parallel fifths + parallel octaves/unisons, voice-pair motions) over all pairs of voices.

    Each track is read as one line, its highest sounding note. A pair of voices is sampled
    at every onset of either voice where both sound; two consecutive samples where both
    voices change pitch are one motion, and a parallel perfect when both move the same
    way and the interval (mod 12) is a fifth, or a unison/octave, before and after.
    """
    lines = [_notes(t) for t in _pitched_tracks(score)]
    lines = [n for n in lines if len(n.start)]
    if len(lines) < 2:
        return 0, 0
    times = np.unique(np.concatenate([n.start for n in lines]))
    tops = [_top_pitch_at(n, times) for n in lines]
    onsets = [np.isin(times, n.start) for n in lines]
    parallels = motions = 0
    for a in range(len(lines)):
        for b in range(a + 1, len(lines)):
            sampled = (onsets[a] | onsets[b]) & (tops[a] >= 0) & (tops[b] >= 0)
            pa, pb = tops[a][sampled], tops[b][sampled]
            step_a, step_b = np.diff(pa), np.diff(pb)
            moved = (step_a != 0) & (step_b != 0)
            interval = np.abs(pa - pb) % 12
            before, after = interval[:-1], interval[1:]
            perfect = ((before == 7) & (after == 7)) | ((before == 0) & (after == 0))
            same_way = np.sign(step_a) == np.sign(step_b)
            motions += int(np.count_nonzero(moved))
            parallels += int(np.count_nonzero(moved & perfect & same_way))
    return parallels, motions


def struck_clashes(score: symusic.Score) -> tuple[int, int]:
    """(pairs a semitone apart, pairs) over the notes that two different voices start at the
    same onset; a semitone apart is interval class 1: minor second, major seventh, minor ninth
    (the decoder's voice-leading rule refuses them in bach and palestrina)."""
    starts, voices, pitches = [], [], []
    for number, track in enumerate(_pitched_tracks(score)):
        arrays = track.notes.numpy()
        starts.append(arrays["time"])
        voices.append(np.full(arrays["time"].size, number))
        pitches.append(arrays["pitch"])
    if len(starts) < 2:
        return 0, 0
    time, voice, pitch = (np.concatenate(a).astype(np.int64) for a in (starts, voices, pitches))
    clashes = pairs = 0
    for onset in np.unique(time):
        at = time == onset
        if np.unique(voice[at]).size < 2:
            continue
        other_voice = voice[at][:, None] != voice[at][None, :]  # (k, k)
        upper = np.triu(other_voice, 1)
        semitone = np.isin(np.abs(pitch[at][:, None] - pitch[at][None, :]) % 12, CLASHING)
        pairs += int(upper.sum())
        clashes += int((upper & semitone).sum())
    return clashes, pairs


@dataclass(frozen=True)
class VoiceReport:
    """Voice measures over the pieces of one style."""

    pieces: int
    voice_count_share: float  # pieces with the expected (or most common) number of voices
    mean_voices: float
    monophonic_share: float | None  # singer/wind tracks that are monophonic; None without such tracks
    parallels_per_100: float | None  # parallel perfects per 100 voice-pair motions; None without motions
    largest_string_chord: int  # biggest chord on one bowed-string track; 0 without strings
    out_of_range: float  # mean share of notes outside their voice's range
    # pieces whose voice count is one of the style's usual counts (None: no counts given)
    usual_count_share: float | None = None
    clashes_per_100: float | None = None  # struck_clashes per 100 pairs struck together; None: no pairs
    # of the steps from note to note within each voice (its top line), the share a semitone
    # and the mean size in semitones; None without steps
    semitone_steps: float | None = None
    mean_interval: float | None = None

    def as_dict(self) -> dict[str, int | float | None]:
        """Plain JSON-able values, floats rounded to 4 decimals."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def line_motion(scores: Sequence[symusic.Score]) -> tuple[float | None, float | None]:
    """(share of semitone steps, mean absolute interval) over every voice's melodic steps
    (``music.lines.voice_lines``: each track's top line); (None, None) without steps."""
    steps = [np.diff(line) for score in scores for line in voice_lines(score)]
    every = np.abs(np.concatenate(steps)) if steps else np.zeros(0)
    if every.size == 0:
        return None, None
    return float(np.mean(every == 1)), float(every.mean())


def usual_voice_counts(scores: Sequence[symusic.Score], share: float = 0.1) -> list[int]:
    """The voice counts at least ``share`` of ``scores`` have (Palestrina: 4, 5 and 6)."""
    counts = Counter(voice_count(s) for s in scores)
    return sorted(c for c, k in counts.items() if k >= share * len(scores))


def voice_report(scores: Sequence[symusic.Score], ranges: dict[str, tuple[int, int]],
                 expected_voices: int | None = None, usual_counts: Collection[int] | None = None
                 ) -> VoiceReport:
    """Summarise the voice measures of ``scores``, pieces of one style.

    ``expected_voices`` is the style's number of voices (4 for a chorale); None takes the
    most common count among ``scores``. ``usual_counts`` are every count the style's real
    pieces commonly have (``usual_voice_counts``). Shares and means are 0.0 for no pieces.
    """
    counts = [voice_count(s) for s in scores]
    if expected_voices is None and counts:
        expected_voices = Counter(counts).most_common(1)[0][0]
    mono_tracks = mono = parallels = motions = string_chord = clashes = struck = 0
    for score in scores:
        for track in _pitched_tracks(score):
            if is_monophonic_voice(track.program):
                mono_tracks += 1
                mono += is_monophonic(track, score.tpq)
            if track.program in STRING_PROGRAMS:
                string_chord = max(string_chord, largest_chord(track))
        p, m = parallel_perfects(score)
        parallels += p
        motions += m
        c, k = struck_clashes(score)
        clashes += c
        struck += k
    n = len(scores)
    semitones, mean_interval = line_motion(scores)
    return VoiceReport(
        pieces=n,
        voice_count_share=sum(c == expected_voices for c in counts) / n if n else 0.0,
        mean_voices=float(np.mean(counts)) if n else 0.0,
        monophonic_share=mono / mono_tracks if mono_tracks else None,
        parallels_per_100=100 * parallels / motions if motions else None,
        largest_string_chord=string_chord,
        out_of_range=float(np.mean([out_of_range_share(s, ranges) for s in scores])) if n else 0.0,
        usual_count_share=(sum(c in set(usual_counts) for c in counts) / n if n else 0.0)
        if usual_counts is not None else None,
        clashes_per_100=100 * clashes / struck if struck else None,
        semitone_steps=semitones,
        mean_interval=mean_interval,
    )


__all__ = [
    "VoiceReport",
    "is_monophonic",
    "largest_chord",
    "line_motion",
    "parallel_perfects",
    "struck_clashes",
    "top_line",
    "usual_voice_counts",
    "voice_count",
    "voice_report",
]
