"""symusic score → notation plan: bars, keys, tempo marks and parts with staves and voices.

No music21 here: the plan is plain data that ``score.build`` turns into a music21
score. Notes are quantized per part to a grid chosen beat by beat.
"""

from __future__ import annotations

import logging
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from composer.errors import LimitExceededError, NoPitchedNotesError
from composer.music.facts import count_bars
from composer.music.instruments import VOICE_TYPES, Instrument, instrument_for, meaningful_name
from composer.score.clefs import clef_from_name
from composer.score.config import ScoreConfig
from composer.score.grid import Grid, choose_grid, min_step, snap
from composer.score.meter import Bar, Q, bar_index, make_bars
from composer.score.staves import Staff, plan_staves

if TYPE_CHECKING:
    import symusic

log = logging.getLogger(__name__)

MAJOR_KEYS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7,
              "F": -1, "Bb": -2, "Eb": -3, "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7}
MINOR_KEYS = {"A": 0, "E": 1, "B": 2, "F#": 3, "C#": 4, "G#": 5, "D#": 6, "A#": 7,
              "D": -1, "G": -2, "C": -3, "F": -4, "Bb": -5, "Eb": -6, "Ab": -7}


@dataclass
class PartPlan:
    """One instrument: a name, a program and one or two staves."""

    name: str  # printed before the first system ("Soprano", "Violin I"); "" lets music21 name it
    abbreviation: str  # printed before later systems
    program: int  # General MIDI program
    family: str  # instrument family: parts of one family are bracketed together
    staves: list[Staff]
    grid: Grid  # the part's quantization grid (which beats hold triplets)


@dataclass
class NotationPlan:
    bars: list[Bar]
    parts: list[PartPlan]
    keys: dict[int, tuple[int, str]] = field(default_factory=dict)  # bar → (sharps, "major"/"minor")
    tempos: dict[int, int] = field(default_factory=dict)  # bar → quarter notes per minute
    key_source: str = "none"  # "midi", "analysis" or "none"
    shortened: int = 0  # notes shortened to fit the voices of a staff


def check_notation_size(score: symusic.Score, config: ScoreConfig, name: str = "the score") -> None:
    """Refuse a score too big to write as sheet music (``LimitExceededError`` naming ``name``)."""
    tracks = [t for t in score.tracks if not t.is_drum and t.note_num() > 0]
    notes = sum(t.note_num() for t in tracks)
    bars = count_bars(score)
    for what, count, limit, advice in (
            ("parts", len(tracks), config.max_parts, "merge or drop some"),
            ("notes", notes, config.max_notes, "write a shorter excerpt"),
            ("bars", bars, config.max_bars, "write a shorter excerpt"),
            (f"measures ({bars} bars × {len(tracks)} parts)", bars * len(tracks), config.max_measures,
             "write a shorter excerpt or drop parts")):
        if count > limit:
            raise LimitExceededError(f"{name}: {count} {what}, too many for sheet music "
                                     f"(the limit is {limit}); {advice}")


def plan_notation(score: symusic.Score, config: ScoreConfig | None = None) -> NotationPlan:
    """Quantize a score and decide its bars, keys, tempo marks, parts, staves and voices."""
    config = config or ScoreConfig()
    check_notation_size(score, config)
    tpq = score.tpq
    tracks = [t for t in score.tracks if not t.is_drum and t.note_num() > 0]
    drums = sum(1 for t in score.tracks if t.is_drum and t.note_num() > 0)
    if drums:
        warnings.warn(f"{drums} drum track(s) left out of the score (no percussion notation)",
                      stacklevel=3)
    if not tracks:
        raise NoPitchedNotesError("the score has no pitched notes: nothing to write as sheet music")
    raw_end = max((Fraction(n.time + n.duration, tpq) for t in tracks for n in t.notes),
                  default=Fraction(4))
    meters = [(Fraction(ts.time, tpq), ts.numerator, ts.denominator) for ts in score.time_signatures]
    bars = make_bars(meters, raw_end + 4)

    parts: list[PartPlan] = []
    shortened = 0
    names = _part_names(tracks)
    end = Fraction(0)
    for track, (name, abbreviation, clef) in zip(tracks, names, strict=True):
        notes, grid = _quantize(track, tpq, bars, config)
        end = max(end, max(e for _, e, _ in notes))
        instrument = instrument_for(track.program)
        staves, cut = plan_staves(notes, instrument, clef, lambda q: bar_index(bars, q), len(bars),
                                  grand_staff_fraction=config.grand_staff_fraction,
                                  max_voices=config.max_voices, split_pitch=config.split_pitch)
        shortened += cut
        parts.append(PartPlan(name, abbreviation, int(track.program), instrument.family, staves, grid))
    bars = [b for b in bars if b.start < end] or bars[:1]
    first = min(e.start for part in parts for staff in part.staves for voice in staff.voices
                for e in voice[:1])
    if config.pickup and all(snap(part.grid, first) == first for part in parts):
        bars[0] = _pickup(bars[0], first)
    if shortened:
        warnings.warn(f"{shortened} notes shortened to fit {config.max_voices} voices per staff",
                      stacklevel=3)
    plan = NotationPlan(bars, parts, shortened=shortened)
    _plan_keys(plan, score, config)
    _plan_tempos(plan, score, config)
    return plan


def _pickup(first_bar: Bar, first_note: Q) -> Bar:
    """The first bar as an anacrusis when the music starts after its downbeat (on a 16th)."""
    silent = first_note - first_bar.start
    if first_bar.start != 0 or not 0 < silent < first_bar.length or silent % Fraction(1, 4):
        return first_bar
    return Bar(first_note, first_bar.length - silent, first_bar.numerator, first_bar.denominator,
               shift=silent)


def _quantize(track: symusic.Track, tpq: int, bars: list[Bar],
              config: ScoreConfig) -> tuple[list[tuple[Q, Q, int]], Grid]:
    raw = [(Fraction(n.time, tpq), Fraction(n.time + n.duration, tpq), int(n.pitch))
           for n in track.notes]
    grid = choose_grid(bars, [(s, e) for s, e, _ in raw], config.divisions, config.finer_grid_penalty)
    notes: list[tuple[Q, Q, int]] = []
    for s, e, p in raw:
        start, end = snap(grid, s), snap(grid, e)
        if end <= start:
            end = start + min_step(grid, start)
        notes.append((start, end, p))
    notes.sort()
    if grid.played:
        notes = _trim_legato(notes)
    # a note still sounding when the same pitch starts again is cut there; an identical
    # note is a duplicate, except in a polyphonic track of single-line instruments (a choir
    # in one track), where it is two voices in unison
    unisons = not instrument_for(track.program).chords and _polyphonic(notes)
    out: list[tuple[Q, Q, int]] = []
    last: dict[int, int] = {}
    for s, e, p in notes:
        j = last.get(p)
        if j is not None:
            ps, pe, _ = out[j]
            if (ps, pe) == (s, e) and not unisons:
                continue
            if ps < s < pe:
                out[j] = (ps, s, p)
        last[p] = len(out)
        out.append((s, e, p))
    return out, grid


LEGATO_OVERLAP = Fraction(1, 4)  # played notes overlapping the next by up to a 16th end there


def _trim_legato(notes: list[tuple[Q, Q, int]]) -> list[tuple[Q, Q, int]]:
    """End each played note where the next begins if it only overlaps it a little (legato)."""
    starts = sorted({s for s, _, _ in notes})
    out = []
    for start, end, pitch in notes:
        k = bisect_right(starts, start)
        following = starts[k] if k < len(starts) else None
        if (following is not None and following < end <= following + LEGATO_OVERLAP
                and following - start >= end - following):
            end = following
        out.append((start, end, pitch))
    return out


def _polyphonic(notes: list[tuple[Q, Q, int]]) -> bool:
    """Do notes of different pitches overlap anywhere? (``notes`` sorted by start)"""
    sounding: list[tuple[Q, int]] = []  # (end, pitch) of notes still sounding
    for start, end, pitch in notes:
        sounding = [(e, p) for e, p in sounding if e > start]
        if any(p != pitch for _, p in sounding):
            return True
        sounding.append((end, pitch))
    return False


def _mean_pitch(track: symusic.Track) -> float:
    notes = track.notes
    return sum(n.pitch for n in notes) / max(1, len(notes))


def _part_names(tracks: list[symusic.Track]) -> list[tuple[str, str, str]]:
    """(name, abbreviation, preferred clef) per track; unnamed choir tracks become S, A, T, B."""
    out: list[tuple[str, str, str]] = []
    choir_unnamed = [i for i, t in enumerate(tracks)
                     if instrument_for(t.program).family == "voice" and not meaningful_name(t.name)]
    voice_names: dict[int, tuple[str, str, str]] = {}
    if len(choir_unnamed) == 4:
        ranked = sorted(choir_unnamed, key=lambda i: -_mean_pitch(tracks[i]))
        for i, (vname, abbr, clef, _) in zip(ranked, VOICE_TYPES, strict=True):
            voice_names[i] = (vname, abbr, clef)
    elif len(choir_unnamed) > 1:
        for i in choir_unnamed:
            mean = _mean_pitch(tracks[i])
            vname, abbr, clef, _ = next(v for v in VOICE_TYPES if mean >= v[3])
            voice_names[i] = (vname, abbr, clef)
    for i, track in enumerate(tracks):
        instrument: Instrument = instrument_for(track.program)
        named = meaningful_name(track.name)
        if i in voice_names:
            out.append(voice_names[i])
        elif named:
            clef = clef_from_name(named) or instrument.clef
            out.append((named, _abbreviate(named, instrument), clef))
        else:
            out.append((instrument.name, instrument.abbreviation, instrument.clef))
    return _numbered(out)


def _abbreviate(name: str, instrument: Instrument) -> str:
    for vname, abbr, _, _ in VOICE_TYPES:
        if name.lower().startswith(vname.lower()):
            return abbr + name[len(vname):]
    if instrument.name and name.lower().startswith(instrument.name.lower()):
        return instrument.abbreviation + name[len(instrument.name):]
    return name if len(name) <= 6 else name[:4] + "."


def _numbered(names: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """"Violin", "Violin" → "Violin 1", "Violin 2"."""
    counts: dict[str, int] = {}
    for name, _, _ in names:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for name, abbr, clef in names:
        if name and counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            out.append((f"{name} {seen[name]}", f"{abbr} {seen[name]}", clef))
        else:
            out.append((name, abbr, clef))
    return out


def key_from_name(name: str) -> tuple[int, str]:
    """("D major" →) (2, "major")."""
    tonic, mode = name.split()
    table = MAJOR_KEYS if mode == "major" else MINOR_KEYS
    return table[tonic], mode


def _plan_keys(plan: NotationPlan, score: symusic.Score, config: ScoreConfig) -> None:
    from composer.music.facts import estimate_key

    tpq = score.tpq
    for ks in score.key_signatures:
        sharps = int(ks.key)
        if not -7 <= sharps <= 7:
            continue
        at = Fraction(ks.time, tpq)
        b = bar_index(plan.bars, at)
        if plan.bars[b].start < at and b + 1 < len(plan.bars):
            b += 1  # a change inside a bar shows at the next bar line
        plan.keys[b] = (sharps, "minor" if ks.tonality else "major")
    if plan.keys:
        plan.key_source = "midi"
    if config.key_source == "file":
        return
    lone_c = (config.distrust_c_major and len(plan.keys) == 1
              and plan.keys.get(0, (None, None))[0] == 0)
    if config.key_source == "auto" and plan.keys and not lone_c:
        return
    name = estimate_key(score)
    if name is None:
        return
    sharps, mode = key_from_name(name)
    if config.key_source == "auto" and lone_c and abs(sharps) < 2:
        return
    if plan.keys:
        log.info("key signature from analysis (%s) instead of the file's", name)
    plan.keys = {0: (sharps, mode)}
    plan.key_source = "analysis"


def _plan_tempos(plan: NotationPlan, score: symusic.Score, config: ScoreConfig) -> None:
    tpq = score.tpq
    shown: float | None = None
    for tempo in sorted(score.tempos, key=lambda t: t.time):
        qpm = float(tempo.qpm)
        b = bar_index(plan.bars, Fraction(tempo.time, tpq))
        if shown is None or b == 0:
            plan.tempos[0] = round(qpm)
            shown = qpm
        elif abs(qpm - shown) / shown >= config.tempo_change:
            plan.tempos[b] = round(qpm)
            shown = qpm
