"""Harmonizing held-out chorales, and varying bars of held-out pieces, measured.

Bach's soprano is taken from a chorale the model never trained on, harmonized, and set
beside Bach's own setting: how often the chord on each beat agrees (the pitch classes
sounding, and the bass), parallel fifths and octaves, voice crossings, notes outside
a voice's range, and whether the style judge hears Bach. Plain root-position triads on
every beat (``triad_setting``) give the same numbers a floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from composer.music.facts import MAJOR_STEPS, beat_chords
from composer.music.harmony import jaccard
from composer.music.voices import mean_pitch, out_of_range_share

if TYPE_CHECKING:
    import symusic

HARMONIC_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 11)  # minor with the raised leading note: a major dominant
DEGREE_ORDER = (0, 4, 3, 5, 1, 2)  # I, V, IV, vi, ii, iii: the triad tried first wins


def _sounding(score: symusic.Score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track, start, end, pitch) of every pitched note, ticks as quarter notes (float)."""
    rows = [(i, n.time / score.tpq, (n.time + n.duration) / score.tpq, n.pitch)
            for i, t in enumerate(score.tracks) if not t.is_drum for n in t.notes if n.duration > 0]
    if not rows:
        return (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3].astype(np.int64)


def chord_agreement(setting: symusic.Score, reference: symusic.Score) -> tuple[float, float]:
    """(mean Jaccard overlap of the pitch classes on each beat, share of beats with the same
    bass pitch class), over the beats where both sound."""
    beats = int(max(setting.end() / setting.tpq, reference.end() / reference.tpq))
    overlaps, basses = [], []
    for (mine, my_bass), (theirs, their_bass) in zip(beat_chords(setting, beats),
                                                     beat_chords(reference, beats), strict=True):
        if mine and theirs:
            overlaps.append(jaccard(mine, theirs))
            basses.append(my_bass % 12 == their_bass % 12)
    return (float(np.mean(overlaps)) if overlaps else 0.0, float(np.mean(basses)) if basses else 0.0)


def voice_crossings(score: symusic.Score) -> float:
    """Share of beats on which a voice sounds below one that is lower on average."""
    tracks = sorted((t for t in score.tracks if not t.is_drum and t.note_num()), key=mean_pitch, reverse=True)
    beats = int(score.end() / score.tpq)
    if len(tracks) < 2 or beats == 0:
        return 0.0
    from composer.evaluate.voice_measures import top_line

    ticks = np.arange(beats, dtype=np.int64) * score.tpq  # (beats,)
    tops = [top_line(track, ticks) for track in tracks]
    crossed = np.zeros(beats, dtype=bool)
    for upper, lower in pairwise(tops):
        crossed |= (upper >= 0) & (lower >= 0) & (upper < lower)
    return float(crossed.mean())


def melody_kept(setting: symusic.Score, melody: symusic.Score) -> bool:
    """Whether one track of ``setting`` holds ``melody``'s notes exactly (onset, length, pitch)."""
    def notes(track: symusic.Track, tpq: int) -> list[tuple[Fraction, Fraction, int]]:
        return sorted((Fraction(n.time, tpq), Fraction(n.duration, tpq), n.pitch) for n in track.notes)

    wanted = notes(melody.tracks[0], melody.tpq)
    return any(notes(t, setting.tpq) == wanted for t in setting.tracks)


def triad_setting(melody: symusic.Score, key: tuple[int, int]) -> symusic.Score:
    """A plain four-part setting: on every beat a root-position triad of the key that holds
    the melody's note (I, V, IV, vi, ii, iii, the first that fits), alto and tenor the
    nearest chord notes below, the bass the root. The melody is kept as it is."""
    import symusic

    mode, tonic = key
    scale = [(tonic + s) % 12 for s in (HARMONIC_MINOR_STEPS if mode else MAJOR_STEPS)]
    triads = {d: (scale[d], scale[(d + 2) % 7], scale[(d + 4) % 7]) for d in range(7)}
    out = melody.copy()
    names = ("Alto", "Tenor", "Bass")
    parts = [symusic.Track(name, 52, False) for name in names]
    beats = int(melody.end() / melody.tpq)
    _, start, end, pitch = _sounding(melody)
    bass = 48
    for beat in range(beats):
        on = (start <= beat + 1e-9) & (end > beat + 1e-9)
        if not on.any():
            continue
        top = int(pitch[on].max())
        chord = next((triads[d] for d in DEGREE_ORDER if top % 12 in triads[d]), triads[0])
        below = sorted((p for p in range(top - 12, top) if p % 12 in chord), reverse=True)
        alto = below[0] if below else top - 12
        tenor = next((p for p in below if p < alto - 2), alto - 5)
        root = min((p for p in range(36, 60) if p % 12 == chord[0]), key=lambda p: abs(p - bass))
        bass = root
        tick, length = beat * melody.tpq, melody.tpq
        for part, p in zip(parts, (alto, tenor, root), strict=True):
            part.notes.append(symusic.Note(tick, length, p, 80))
    for part in parts:
        out.tracks.append(part)
    return out


def paired_overlap(settings: Sequence[symusic.Score], baseline: Sequence[symusic.Score],
                   references: Sequence[symusic.Score], seed: int = 0, resamples: int = 2000
                   ) -> dict[str, float | int]:
    """``settings`` against ``baseline`` chorale by chorale, in chord overlap with the
    ``references``: on how many the settings overlap more, the mean difference and its 95 %
    interval (a bootstrap over the chorales)."""
    differences = np.array([chord_agreement(mine, reference)[0] - chord_agreement(theirs, reference)[0]
                            for mine, theirs, reference in zip(settings, baseline, references, strict=True)])
    if not differences.size:
        return {}
    picks = np.random.default_rng(seed).integers(0, differences.size, (resamples, differences.size))
    means = differences[picks].mean(axis=1)  # (resamples,)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"chorales": int(differences.size), "higher": int((differences > 0).sum()),
            "mean_difference": round(float(differences.mean()), 4),
            "interval_95": [round(float(low), 4), round(float(high), 4)]}


@dataclass(frozen=True)
class SettingMeasures:
    """One way of harmonizing, over the held-out chorales."""

    settings: int
    melody_kept: float  # share of settings with the melody note for note
    chord_overlap: float  # mean Jaccard overlap of each beat's pitch classes with Bach's
    same_bass: float  # share of beats whose bass pitch class is Bach's
    parallels_per_100: float | None  # parallel fifths and octaves per 100 voice-pair motions
    clashes_per_100: float | None  # voices struck together a semitone apart, per 100 pairs struck together
    crossings: float  # share of beats with a voice crossing
    out_of_range: float  # mean share of notes outside their voice's range
    judged_bach: float | None  # share the style judge calls "bach" (None: no judge)

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_settings(settings: Sequence[symusic.Score], melodies: Sequence[symusic.Score],
                     references: Sequence[symusic.Score], ranges: Mapping[str, tuple[int, int]],
                     judged: Sequence[str] | None = None) -> SettingMeasures:
    """The measures of ``settings`` (one per chorale) against Bach's ``references``."""
    from composer.evaluate.voice_measures import parallel_perfects, struck_clashes

    overlaps, basses, crossings, outside, kept = [], [], [], [], []
    parallels = motions = clashes = struck = 0
    for setting, melody, reference in zip(settings, melodies, references, strict=True):
        overlap, bass = chord_agreement(setting, reference)
        overlaps.append(overlap)
        basses.append(bass)
        crossings.append(voice_crossings(setting))
        outside.append(out_of_range_share(setting, ranges))
        kept.append(melody_kept(setting, melody))
        p, m = parallel_perfects(setting)
        parallels, motions = parallels + p, motions + m
        c, k = struck_clashes(setting)
        clashes, struck = clashes + c, struck + k
    n = len(settings)
    return SettingMeasures(
        settings=n, melody_kept=float(np.mean(kept)) if n else 0.0,
        chord_overlap=float(np.mean(overlaps)) if n else 0.0, same_bass=float(np.mean(basses)) if n else 0.0,
        parallels_per_100=100 * parallels / motions if motions else None,
        clashes_per_100=100 * clashes / struck if struck else None,
        crossings=float(np.mean(crossings)) if n else 0.0, out_of_range=float(np.mean(outside)) if n else 0.0,
        judged_bach=float(np.mean([j == "bach" for j in judged])) if judged else None)


__all__ = ["SettingMeasures", "beat_chords", "chord_agreement", "measure_settings", "melody_kept",
           "paired_overlap", "triad_setting", "voice_crossings"]
