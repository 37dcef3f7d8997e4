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
    """Make every sung or blown track one line, in place: a note that still sounds when
    the track's next note starts ends there (the decoder already keeps such a voice to
    one note per onset). Other tracks (strings, keyboards) are left as they are."""
    from composer.music.voices import is_monophonic_voice

    for track in score.tracks:
        if track.is_drum or not is_monophonic_voice(track.program) or len(track.notes) < 2:
            continue
        notes = sorted(track.notes, key=lambda n: (n.time, -n.pitch))
        kept = [notes[0]]
        for note in notes[1:]:
            if note.time == kept[-1].time:
                continue  # a second note at one onset (only a prompt can hold one)
            if kept[-1].time + kept[-1].duration > note.time:
                kept[-1].duration = note.time - kept[-1].time
            kept.append(note)
        track.notes.clear()
        track.notes.extend(kept)
    return score
