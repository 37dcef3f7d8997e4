"""Fitting decoded notes to whole bars: exactly N bars, nothing sounding past the last."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import symusic


END_MARKER = "end"


def bar_lines(score: symusic.Score, count: int) -> list[int]:
    """Ticks of the first ``count + 1`` bar lines (bar i spans [lines[i], lines[i+1]))."""
    signatures = sorted((ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures)
    if not signatures or signatures[0][0] > 0:
        signatures.insert(0, (0, 4, 4))
    lines = [0]
    index = 0
    while len(lines) < count + 1:
        tick = lines[-1]
        while index + 1 < len(signatures) and signatures[index + 1][0] <= tick:
            index += 1
        _, numerator, denominator = signatures[index]
        lines.append(tick + max(1, score.tpq * 4 * numerator // denominator))
    return lines


def fit_to_bars(score: symusic.Score, bars: int, tempo: float | None = None) -> symusic.Score:
    """Drop notes after bar ``bars`` and shorten notes that sound past it; set ``tempo``.

    A marker at the last bar line keeps closing rests: without it the file would end
    with its last note, and a piece whose final bar is silent would have a bar too few.
    """
    import symusic

    end = bar_lines(score, bars)[-1]
    for track in score.tracks:
        notes = [n for n in track.notes if n.time < end]
        for note in notes:
            if note.time + note.duration > end:
                note.duration = end - note.time
        track.notes.clear()
        track.notes.extend(notes)
    for events in (score.tempos, score.time_signatures, score.key_signatures, score.markers):
        inside = [e for e in events if e.time < end]
        events.clear()
        events.extend(inside)
    score.markers.append(symusic.TextMeta(end, END_MARKER))
    if tempo is not None:
        score.tempos.clear()
        score.tempos.append(symusic.Tempo(0, float(tempo)))
    return score


def legato_voices(score: symusic.Score) -> symusic.Score:
    """Keep every voice within the notes it can sound at once, in place.

    A sung or blown voice sounds one note, a bowed string two (``music.voices.max_chord``):
    where a new note would exceed that, the notes still sounding from earlier onsets end
    where it starts, oldest first. The decoder already limits the notes a voice *starts*
    at one onset; this cuts the notes held under later ones. Keyboards and other
    unlimited tracks are left as they are.
    """
    from composer.music.voices import max_chord

    for track in score.tracks:
        limit = 0 if track.is_drum else max_chord(track.program)
        if limit == 0 or len(track.notes) < 2:
            continue
        notes = sorted(track.notes, key=lambda n: (n.time, -n.pitch))
        kept: list = []
        sounding: list = []  # kept notes that may still sound, oldest first
        for note in notes:
            sounding = [n for n in sounding if n.time + n.duration > note.time]
            same_onset = [n for n in sounding if n.time == note.time]
            if len(same_onset) >= limit:
                continue  # more notes at one onset than the voice has (only a prompt can hold them)
            while len(sounding) >= limit:
                oldest = next(n for n in sounding if n.time < note.time)
                oldest.duration = note.time - oldest.time
                sounding.remove(oldest)
            kept.append(note)
            sounding.append(note)
        track.notes.clear()
        track.notes.extend(kept)
    return score
