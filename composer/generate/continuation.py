"""Continuing a user's melody: preparing the prompt and joining the new bars to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.generate.fit import bar_lines, fit_to_bars
from composer.music.facts import downbeats

if TYPE_CHECKING:
    import symusic


@dataclass
class PreparedPrompt:
    name: str  # file name or "note text", for messages and provenance
    score: symusic.Score  # the part of the prompt the model sees (last K bars)
    original: symusic.Score  # the whole prompt, as read
    offset: int  # tick of ``score``'s start within ``original``
    meter: str | None  # the prompt's last time signature, e.g. "3/4"


def prepare_prompt(prompt: str | Path | symusic.Score, prompt_bars: int | None = None) -> PreparedPrompt:
    """Read the prompt (file, note text or score) and keep its last ``prompt_bars`` bars."""
    import symusic

    from composer.errors import ConfigError
    from composer.io.reader import read_score

    if isinstance(prompt, symusic.Score):
        name, original = "score", prompt
    else:
        name, original = str(prompt), read_score(prompt)
    meter = None
    if original.time_signatures:
        last = max(original.time_signatures, key=lambda ts: ts.time)
        meter = f"{last.numerator}/{last.denominator}"
    offset = 0
    score = original
    if prompt_bars is not None:
        if prompt_bars < 1:
            raise ConfigError(f"--prompt-bars {prompt_bars}: use 1 or more")
        lines = downbeats(original).tolist()
        if prompt_bars < len(lines):
            offset = int(lines[len(lines) - prompt_bars])
            score = original.clip(offset, original.end() + 1).shift_time(-offset)
    return PreparedPrompt(name, score, original, offset, meter)


def join_continuation(prompt: PreparedPrompt, generated: symusic.Score, prompt_bars: int,
                      bars: int, keep_prompt: bool = True,
                      programs: dict[int, int] | None = None) -> symusic.Score:
    """The prompt followed by the generated bars after its ``prompt_bars`` bars.

    The prompt's own notes, tempo, meter and key are kept as they were; only the new
    bars come from the model (moved onto the prompt's bar lines and time resolution).
    """
    import symusic

    new = generated.resample(prompt.original.tpq, min_dur=1) if generated.tpq != prompt.original.tpq \
        else generated.copy()
    gen_start = bar_lines(new, prompt_bars)[-1]  # first generated bar, in the generated score
    seen_start = bar_lines(prompt.score, prompt_bars)[-1]  # the same bar line in the seen prompt
    start = prompt.offset + seen_start  # ... and in the whole prompt
    if keep_prompt:
        out = prompt.original.copy()
        shift = start - gen_start
        for track in out.tracks:  # nothing of the prompt may sound into the new bars
            for note in track.notes:
                if note.time < start and note.time + note.duration > start:
                    note.duration = start - note.time
    else:
        out = symusic.Score(prompt.original.tpq)
        out.time_signatures.extend(new.clip(gen_start, new.end() + 1).shift_time(-gen_start)
                                   .time_signatures)
        tempos = [t for t in prompt.original.tempos if t.time <= start]
        out.tempos.append(symusic.Tempo(0, tempos[-1].qpm if tempos else 120.0))
        shift = -gen_start
    by_program = {(t.program, t.is_drum): t for t in out.tracks}
    for track in new.tracks:
        notes = [n for n in track.notes if n.time >= gen_start]
        if not notes:
            continue
        program = (programs or {}).get(track.program, track.program)  # back on the prompt's
        target = by_program.get((program, track.is_drum))
        if target is None:
            target = symusic.Track(track.name, program, track.is_drum)
            out.tracks.append(target)
            target = out.tracks[-1]
            by_program[(program, track.is_drum)] = target
        for note in notes:
            target.notes.append(symusic.Note(note.time + shift, note.duration, note.pitch, note.velocity))
        target.notes.sort()
    bars_out = bars + (_bars_before(prompt.original, start) if keep_prompt else 0)
    return fit_to_bars(out, bars_out)


def _bars_before(score: symusic.Score, tick: int) -> int:
    """Bars that start before ``tick``."""
    shortest_bar = max(1, score.tpq // 4)  # a 1/16 bar; no meter makes bars shorter
    lines = bar_lines(score, tick // shortest_bar + 1)
    return max(1, sum(1 for line in lines[:-1] if line < tick))
