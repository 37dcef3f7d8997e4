"""``composer vary``: which bars to rewrite, and putting the rewritten bars into the piece.

The model writes the chosen bars after the bars before them (a prompt, like
``continue``); the piece's own later bars then follow unchanged. Here are the pieces of
that which need no model: reading ``--bars`` ("3,5-8"), the ticks of bar lines, and
splicing the new notes into a copy of the piece so that every note that does not start
in a chosen bar stays exactly as it was.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from composer.errors import ConfigError

if TYPE_CHECKING:
    import symusic

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_bars(text: str, bars_in_piece: int) -> list[tuple[int, int]]:
    """``"3,5-8"`` → ``[(3, 3), (5, 8)]``: sorted runs of bars, 1-based and inclusive,
    adjacent or overlapping runs merged. ``ConfigError`` for malformed text or bars
    outside 1..``bars_in_piece``.

    >>> parse_bars("5-8, 3", 10)
    [(3, 3), (5, 8)]
    >>> parse_bars("1-2,3", 4)
    [(1, 3)]
    """
    chosen: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if match is None:
            raise ConfigError(f"--bars {text!r}: write bars as numbers and ranges, e.g. 3,5-8")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first > last:
            raise ConfigError(f"--bars {text!r}: {first}-{last} runs backwards")
        if first < 1 or last > bars_in_piece:
            raise ConfigError(f"--bars {text!r}: the piece has bars 1 to {bars_in_piece}")
        chosen.update(range(first, last + 1))
    runs: list[tuple[int, int]] = []
    for bar in sorted(chosen):
        if runs and runs[-1][1] == bar - 1:
            runs[-1] = (runs[-1][0], bar)
        else:
            runs.append((bar, bar))
    return runs


def splice(piece: symusic.Score, new: symusic.Score, new_start: int, start: int, stop: int,
           track_of: dict[int, int]) -> symusic.Score:
    """``piece`` with the notes that start in [``start``, ``stop``) replaced by ``new``'s.

    ``new``'s notes from its tick ``new_start`` on are moved to ``start`` (``new`` is at
    ``piece``'s resolution), cut at ``stop``, and go to track ``track_of[i]`` of the copy
    for ``new``'s track ``i`` (tracks not in the map are left out). Every other note of
    ``piece``, one that sounds into the window included, is kept as it was.
    """
    import symusic

    out = piece.copy()
    for track in out.tracks:
        kept = [n for n in track.notes if not start <= n.time < stop]
        track.notes.clear()
        track.notes.extend(kept)
    shift = start - new_start
    for index, track in enumerate(new.tracks):
        target = track_of.get(index)
        if target is None:
            continue
        for note in track.notes:
            time = note.time + shift
            if start <= time < stop:
                out.tracks[target].notes.append(
                    symusic.Note(time, min(note.duration, stop - time), note.pitch, note.velocity))
        out.tracks[target].notes.sort()
    return out


__all__ = ["parse_bars", "splice"]
