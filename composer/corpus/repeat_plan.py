"""The order in which a part's bars are played, decided as music21's ``repeat.Expander`` does.

A port of the Expander's handling of repeat barlines and repeat brackets (first and second
endings), run on plain records of the bars instead of on music21 measures. The Expander
deep-copies bars on every pass over a repeated section, and each copy of a bar costs time
in proportion to the number of bars (music21 checks the copy against every stream the bar
was in); a whole quartet in one file spent most of its minute there. Here a pass costs
list operations. The port keeps the Expander's decisions, quirks included, so that the
bars come out in the same order: where it raises, this raises ``CannotExpand``, or the
same Python error music21 would meet. Jumps (da capo, dal segno, coda, fine) are not
ported; the caller leaves pieces with them to music21.

Line for line this follows music21 10.x ``repeat.Expander`` (``process``,
``_processRecursiveRepeatBars``, ``_processInnermostRepeatsAndBrackets``,
``processInnermostRepeatBars``, ``_groupRepeatBracketIndices`` and the coherence checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PASSES = 100  # the Expander's own safety limit


class CannotExpand(Exception):
    """The repeats are not well formed: music21 would refuse to expand them."""


@dataclass(frozen=True)
class RepeatBar:
    """A repeat barline: ``direction`` is ``"start"`` or ``"end"``; ``times`` as written."""

    direction: str
    times: int | None = None


@dataclass(eq=False)
class Bar:
    """One bar as the Expander sees it: its index in the part and its repeat barlines.

    Compared by identity, like music21's measures: a copy is another bar.
    """

    index: int
    left: RepeatBar | None = None  # None: no barline, or one that is not a repeat
    right: RepeatBar | None = None

    def copy(self) -> Bar:
        return Bar(self.index, self.left, self.right)

    def strip_repeats(self) -> None:
        self.left = None
        self.right = None


@dataclass(eq=False)
class Bracket:
    """A repeat bracket (an ending): its numbers and the bars under it, in order."""

    numbers: list[int]
    bars: list[Bar] = field(default_factory=list)


def play_order(bars: list[Bar], brackets: list[Bracket]) -> list[int]:
    """Indices of ``bars`` in the order they are played. ``brackets`` span items of ``bars``
    and come in the order music21 finds them (the part's flattened order)."""
    if not bars:
        raise CannotExpand("no bars")
    if not _has_repeat(bars):
        return [bar.index for bar in bars]
    if not _repeat_bars_coherent(bars):
        raise CannotExpand("repeat barlines are not paired")
    if not _brackets_coherent(bars, brackets):
        raise CannotExpand("repeat brackets are not coherent")
    return [bar.index for bar in _Expansion(brackets).run(list(bars))]


def _has_repeat(bars: list[Bar]) -> bool:
    return any(bar.left is not None or (bar.right is not None and bar.right.direction == "end")
               for bar in bars)


def _repeat_bars_coherent(bars: list[Bar]) -> bool:
    starts = ends = balance = 0
    for bar in bars:
        if bar.left is not None:
            if bar.left.direction == "start":
                starts += 1
                balance += 1
            else:  # an end written on the left of the next bar
                if balance == 0:
                    starts += 1
                    balance += 1
                ends += 1
                balance -= 1
        if bar.right is not None:
            if bar.right.direction != "end":
                raise CannotExpand("a start repeat on the right of a bar")
            if balance == 0:  # the opening repeat may be left out
                starts += 1
                balance += 1
            ends += 1
            balance -= 1
    return balance in (0, 1) and starts in (ends, ends - 1)


def _bracket_groups(bars: list[Bar], brackets: list[Bracket]) -> list[tuple[list[Bracket], list[int]]]:
    """(brackets, bar indices) of each group of endings; the last group may be empty."""
    groups: list[tuple[list[Bracket], list[int]]] = []
    found_numbers: list[int] = []
    group: tuple[list[Bracket], list[int]] = ([], [])
    for i, bar in enumerate(bars):
        for bracket in brackets:
            if not bracket.bars or bracket.bars[0] is not bar:
                continue
            if bracket.numbers[0] in found_numbers:  # numbering starts again: a new group
                groups.append(group)
                found_numbers = []
                group = ([], [])
            found_numbers += bracket.numbers
            group[0].append(bracket)
            last = bracket.bars[-1]
            for j, other in enumerate(bars):
                if j >= i and other is not last:
                    group[1].append(j)
                elif other is last:
                    group[1].append(j)
                    break
    groups.append(group)  # music21 appends the open group even when it is empty
    return groups


def _brackets_coherent(bars: list[Bar], brackets: list[Bracket]) -> bool:
    for group_brackets, _ in _bracket_groups(bars, brackets):
        if not group_brackets:
            return True  # as music21: the first empty group ends the check
        if len(group_brackets) > 1:
            numbers = [n for bracket in group_brackets for n in bracket.numbers]
            if list(range(1, max(numbers) + 1)) != numbers:
                return False
        spanned: set[int] = set()
        for count, bracket in enumerate(group_brackets):
            for bar in bracket.bars:
                if id(bar) in spanned:
                    return False  # overlapping brackets
                spanned.add(id(bar))
            if not bracket.bars:
                raise AttributeError("an empty repeat bracket")  # music21 fails on None too
            if bracket.bars[-1].right is None and (
                    len(group_brackets) == 1 or count < len(group_brackets) - 1):
                return False  # every ending but the last closes with a repeat
    return True


def _innermost(bars: list[Bar]) -> list[int]:
    starts: list[int] = []
    for i, bar in enumerate(bars):
        if bar.left is not None:
            if bar.left.direction == "start":
                starts.append(i)
            else:
                return list(range(starts[-1], i)) if starts else list(range(i))
        if bar.right is not None and bar.right.direction == "end":
            return list(range(starts[-1], i + 1)) if starts else list(range(i + 1))
    return []


def _end_repeat(bars: list[Bar], index: int) -> tuple[Bar, Bar, int]:
    """(last bar repeated, bar holding the end repeat, times played)."""
    last = bars[index]
    if last.right is not None and last.right.direction == "end":
        end, times = last, last.right.times
    else:
        if index >= len(bars) - 1:
            raise CannotExpand("no end repeat after the repeated bars")
        end = bars[index + 1]
        if end.left is None or end.left.direction != "end":
            raise CannotExpand("no end repeat where expected")
        times = end.left.times
    return last, end, 2 if times is None else times


class _Expansion:
    def __init__(self, brackets: list[Bracket]) -> None:
        self.brackets = brackets
        self.done: set[int] = set()  # ids of brackets already expanded

    def run(self, bars: list[Bar]) -> list[Bar]:
        for _ in range(MAX_PASSES):
            bars = self._innermost_with_brackets(bars)
            if not _has_repeat(bars):
                break
        return bars

    def _repeat_innermost(self, bars: list[Bar], indices: list[int] | None = None,
                          times: int | None = None, expansion_only: bool = False) -> list[Bar]:
        out: list[Bar] = []
        forced = indices is not None
        if indices is None:
            indices = _innermost(bars)
        strip_next = False
        i = 0
        while i < len(bars):
            if not indices:
                break  # music21 returns what it has so far: nothing
            if i == indices[0]:
                last: Bar | None = None
                end: Bar | None = None
                found = 0
                try:
                    last, end, found = _end_repeat(bars, indices[-1])
                except CannotExpand:
                    if not forced:
                        raise
                if times is None:
                    times = found
                for _ in range(times):
                    for j in indices:
                        played = bars[j].copy()
                        if j in (indices[0], indices[-1]):
                            played.strip_repeats()
                        out.append(played)
                if last is not end:
                    strip_next = True
                i = indices[-1] + 1
            else:
                if not expansion_only:
                    bar = bars[i]
                    if strip_next:
                        bar.strip_repeats()
                        strip_next = False
                    out.append(bar)
                i += 1
        return out

    def _innermost_with_brackets(self, bars: list[Bar]) -> list[Bar]:
        groups = _bracket_groups(bars, self.brackets)
        innermost = _innermost(bars)
        focus: list[Bracket] | None = None
        for group_brackets, _ in groups:
            if not innermost:
                continue
            first, last = bars[innermost[0]], bars[innermost[-1]]
            for bracket in group_brackets:
                if id(bracket) in self.done:
                    break
                if any(b is first or b is last for b in bracket.bars):
                    focus = group_brackets
                    break
            if focus is not None:
                break
        if focus is None:
            return self._repeat_innermost(bars)

        before = bars[:innermost[0]]
        boundaries: list[tuple[Bracket, list[int], list[int]]] = []
        for bracket in focus:
            self.done.add(id(bracket))
            start = innermost[0]
            end_index = bracket_start = None
            for i, bar in enumerate(bars):
                if bar is bracket.bars[-1]:
                    end_index = i
                if bar is bracket.bars[0]:
                    bracket_start = i
            if end_index is None or bracket_start is None:
                raise CannotExpand("a repeat bracket lies outside the bars")
            indices = list(range(start, end_index + 1))
            for _, _, earlier in boundaries:
                indices = [q for q in indices if q not in earlier]
            boundaries.append((bracket, indices, list(range(bracket_start, end_index + 1))))

        sections: list[list[Bar]] = []
        highest = -1
        for bracket, indices, _ in boundaries:
            sections.append(self._repeat_innermost(bars, indices, len(bracket.numbers),
                                                   expansion_only=True))
            highest = max(indices)  # an empty list raises, as in music21
        out = list(before)
        for section in sections:
            for bar in section:
                bar.strip_repeats()
                out.append(bar)
        out += bars[highest + 1:]
        return out


__all__ = ["Bar", "Bracket", "CannotExpand", "RepeatBar", "play_order"]
