"""Written-out repeats: the bars of each part in playing order, notes as music21 makes them.

music21's ``expandRepeats`` deep-copies bars on every pass over a repeated section (and
throws some copies away: ``junk`` in ``repeat.Expander``), and each copy costs time in
proportion to the number of bars. That made repeat expansion a third of an ABC tune's
conversion and most of a string quartet's (a whole quartet in one file took a minute).
Here ``repeat_plan`` decides the order of the bars as the Expander would, on plain
records of their repeat barlines and endings, and the expanded part is assembled from
the real bars: each bar copied once per playing (or, where no bars share an object,
the bar itself for its first playing). The notes come out the same.

Pieces whose repeats use jumps (da capo, dal segno, coda, fine) go through music21's
``expandRepeats`` unchanged: they are rare, and the jumps read more than barlines.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from composer.corpus.repeat_plan import Bar, Bracket, RepeatBar, play_order

if TYPE_CHECKING:
    import music21


def has_repeats(stream: music21.stream.Stream) -> bool:
    """Whether the first part has repeat barlines, or the piece a repeat expression."""
    import music21

    first = stream.parts[0] if stream.hasPartLikeStreams() else stream
    for measure in first.getElementsByClass(music21.stream.Measure):
        for line in (measure.leftBarline, measure.rightBarline):
            if isinstance(line, music21.bar.Repeat):
                return True
    return bool(stream.flatten().getElementsByClass(music21.repeat.RepeatExpression))


def expand_repeats(stream: music21.stream.Stream) -> tuple[music21.stream.Stream, bool]:
    """(stream with repeats written out, True), or (the stream unchanged, False) where
    music21 cannot follow its repeats."""
    if not has_repeats(stream):
        return stream, True
    try:
        orders = _bar_orders(stream)
        if orders is None:
            return stream.expandRepeats(), True
    except Exception:  # music21 raises several types on repeats it cannot follow
        return stream, False
    return _assemble(stream, orders), True


def _bar_orders(score: music21.stream.Stream) -> list[list[int]] | None:
    """Per part, the indices of its bars in playing order; None where music21 must expand."""
    import music21

    if not isinstance(score, music21.stream.Score):
        return None
    parts = list(score.getElementsByClass(music21.stream.Part))
    if not parts:
        return None
    orders = []
    for part in parts:
        bars = list(part.getElementsByClass(music21.stream.Measure))
        if not bars:  # music21 refuses such a part; it says so in its own words
            return None
        flat = part.flatten()
        if flat.getElementsByClass(music21.repeat.RepeatExpression).first() is not None:
            return None
        plan = _plan_of(bars, list(flat.getElementsByClass(music21.spanner.RepeatBracket)))
        if plan is None:
            return None
        orders.append(play_order(*plan))
    return orders


def _plan_of(bars: list[music21.stream.Measure], brackets: list[music21.spanner.RepeatBracket]
             ) -> tuple[list[Bar], list[Bracket]] | None:
    """The bars and endings as ``repeat_plan`` reads them; None if an ending spans anything
    but these bars."""
    records = [Bar(index, _repeat_bar(bar.leftBarline), _repeat_bar(bar.rightBarline))
               for index, bar in enumerate(bars)]
    by_id = {id(bar): record for bar, record in zip(bars, records, strict=True)}
    endings = []
    for bracket in brackets:
        spanned = [by_id.get(id(element)) for element in bracket.getSpannedElements()]
        if any(record is None for record in spanned):
            return None
        endings.append(Bracket(list(bracket.numberRange), [r for r in spanned if r is not None]))
    return records, endings


def _repeat_bar(line: music21.bar.Barline | None) -> RepeatBar | None:
    import music21

    if not isinstance(line, music21.bar.Repeat):
        return None
    return RepeatBar(line.direction, line.times)


def _assemble(score: music21.stream.Score, orders: list[list[int]]) -> music21.stream.Score:
    """The score with each part's bars in playing order, laid out as music21 would.

    Elements outside the bars (metadata, instruments, spanners) are shared with the
    source score, not copied: nothing reads them as notes.
    """
    import music21

    expanded = score.cloneEmpty(derivationMethod="expandRepeats")
    expanded.mergeAttributes(score)
    for element in score.iter().getElementsNotOfClass(music21.stream.Part):
        expanded.insert(score.elementOffset(element), element)
    parts = list(score.getElementsByClass(music21.stream.Part))
    for part, order in zip(parts, orders, strict=True):
        expanded.insert(0, _assemble_part(part, order))
    return expanded


def _assemble_part(part: music21.stream.Part, order: list[int]) -> music21.stream.Part:
    import music21

    bars = list(part.getElementsByClass(music21.stream.Measure))
    out = part.__class__()
    out.mergeAttributes(part)
    # A bar's first playing is the bar itself, unless bars share an object (ABC's re-barring
    # puts one time signature in two bars): then every playing is a copy, as in music21,
    # for only copies give each its own offset.
    shared = _shares_objects(bars)
    played: set[int] = set()
    in_order = []
    for index in order:
        first = index not in played and not shared
        in_order.append(bars[index] if first else copy.deepcopy(bars[index]))
        played.add(index)
    out.append(in_order)
    for element in part.iter().getElementsNotOfClass(music21.stream.Measure):
        if not isinstance(element, music21.spanner.RepeatBracket):
            out.insert(part.elementOffset(element), element)
    return out


def _shares_objects(bars: list[music21.stream.Measure]) -> bool:
    seen: set[int] = set()
    for bar in bars:
        for element in bar.recurse():
            if id(element) in seen:
                return True
            seen.add(id(element))
    return False


__all__ = ["expand_repeats", "has_repeats"]
