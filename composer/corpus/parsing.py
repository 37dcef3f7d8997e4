"""Reading a corpus input's notation with music21, without the engraving work.

music21's ABC reader beams every bar (``Stream.makeBeams``, with stem directions) once
the notes are built: over half of an ABC tune's parse time, for beams that no later
step reads. Only pitches, onsets, durations, ties, velocities, parts, meters, keys and
tempos go into a corpus MIDI file, and beaming changes none of them. So the corpus
parses with beaming switched off; everything else music21 does is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from composer.corpus.sources import PieceInput
from composer.io.reader import ReadLimits, parse_music21

if TYPE_CHECKING:
    import music21


def _no_beams(self: music21.stream.Stream, *args: Any, inPlace: bool = False,
              **kwargs: Any) -> music21.stream.Stream | None:
    return None if inPlace else self


@contextmanager
def without_beaming() -> Iterator[None]:
    """music21 leaves beams unmade inside the block.

    The switch is process-wide while the block runs; corpus conversion runs one input at
    a time per process (a pool worker, or the command's main thread).
    """
    import music21

    stream_class = music21.stream.Stream
    original = stream_class.__dict__["makeBeams"]
    stream_class.makeBeams = _no_beams  # type: ignore[method-assign]
    try:
        yield
    finally:
        stream_class.makeBeams = original  # type: ignore[method-assign]


def parse_notation(item: PieceInput) -> music21.stream.Stream:
    """The input's notation (its file, or its tune of an ABC book) as a music21 stream.

    The caller limits the time of the whole conversion, so parsing has no limit of its own.
    """
    source = item.text if item.text is not None else item.path
    with without_beaming():
        return parse_music21(source, item.fmt, item.label, ReadLimits(parse_seconds=None))


__all__ = ["parse_notation", "without_beaming"]
