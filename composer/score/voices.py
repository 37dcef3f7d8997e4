"""Voices: the melodic lines inside one track.

Notes that sound together are matched to the open lines they continue best (smallest
leaps, no crossing), so the four voices of a chorale in one choir track come apart
again; lines beyond what a staff can hold are merged into chords where they move
together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from composer.score.durations import Event
from composer.score.meter import Q


@dataclass
class Line:
    """A monophonic succession of events (chords count as one event)."""

    events: list[Event] = field(default_factory=list)

    @property
    def end(self) -> Q:
        return self.events[-1].end

    @property
    def last_pitch(self) -> int:
        return self.events[-1].pitches[-1]

    @property
    def mean_pitch(self) -> float:
        pitches = [p for e in self.events for p in e.pitches]
        return sum(pitches) / len(pitches)


NEW_LINE_COST = 48.0  # semitones of leap worth opening a new line while one is free


def separate_lines(events: Sequence[Event]) -> list[Line]:
    """Split overlapping events into monophonic lines that follow the voice leading.

    Events starting together are matched to the free lines in pitch order (highest to
    highest) so that crossing lines stay apart; where no free line is near enough a
    new line starts.
    """
    lines: list[Line] = []
    ordered = sorted(events, key=lambda e: (e.start, -e.pitches[-1]))
    k = 0
    while k < len(ordered):
        start = ordered[k].start
        group = []
        while k < len(ordered) and ordered[k].start == start:
            group.append(ordered[k])
            k += 1
        free = sorted((line for line in lines if line.end <= start), key=lambda ln: -ln.last_pitch)
        for event, line in _match(group, free):
            if line is None:
                line = Line()
                lines.append(line)
            line.events.append(event)
    return lines


def _match(group: list[Event], free: list[Line]) -> list[tuple[Event, Line | None]]:
    """Order-preserving assignment of new events (high to low) to free lines (high to low)."""
    n, m = len(group), len(free)
    inf = float("inf")
    # cost[i][j]: best cost placing the first i events using the first j lines
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if j < m and here < cost[i][j + 1]:  # leave line j idle
                cost[i][j + 1], move[i][j + 1] = here, (i, j)
            if i < n:
                opened = here + NEW_LINE_COST  # event i opens a new line
                if opened < cost[i + 1][j]:
                    cost[i + 1][j], move[i + 1][j] = opened, (i, j)
                if j < m:
                    leap = here + abs(group[i].pitches[-1] - free[j].last_pitch)
                    if leap < cost[i + 1][j + 1]:
                        cost[i + 1][j + 1], move[i + 1][j + 1] = leap, (i, j)
    pairs: list[tuple[Event, Line | None]] = []
    i, j = n, m
    while (i, j) != (0, 0):
        step = move[i][j]
        assert step is not None
        pi, pj = step
        if pi == i - 1 and pj == j - 1:
            pairs.append((group[i - 1], free[j - 1]))
        elif pi == i - 1:
            pairs.append((group[i - 1], None))
        i, j = pi, pj
    pairs.reverse()
    return pairs


def merge_into(lines: list[Line], limit: int) -> tuple[list[Line], int]:
    """Keep at most ``limit`` lines: extra lines join the nearest in register.

    An event joins a chord that starts and ends with it, or fills a gap; where it
    overlaps, the earlier event is shortened. Returns the lines and how many events
    were shortened.
    """
    lines = sorted(lines, key=lambda ln: -ln.mean_pitch)
    shortened = 0
    while len(lines) > limit:
        smallest = min(range(len(lines)), key=lambda i: len(lines[i].events))
        extra = lines.pop(smallest)
        target = min(lines, key=lambda ln: abs(ln.mean_pitch - extra.mean_pitch))
        merged, cut = _merge_events(target.events, extra.events)
        target.events = merged
        shortened += cut
    return lines, shortened


def _merge_events(base: list[Event], extra: list[Event]) -> tuple[list[Event], int]:
    by_span = {(e.start, e.end): e for e in base}
    rest = []
    for event in extra:
        twin = by_span.get((event.start, event.end))
        if twin is not None:
            by_span[(event.start, event.end)] = Event(
                twin.start, twin.end, tuple(sorted(set(twin.pitches + event.pitches))))
        else:
            rest.append(event)
    events = sorted([*by_span.values(), *rest], key=lambda e: (e.start, e.end))
    out: list[Event] = []
    cut = 0
    for event in events:
        if out and out[-1].start == event.start:
            prev = out.pop()
            end = min(prev.end, event.end)
            out.append(Event(prev.start, end, tuple(sorted(set(prev.pitches + event.pitches)))))
            cut += prev.end != event.end
            continue
        if out and out[-1].end > event.start:
            prev = out.pop()
            out.append(Event(prev.start, event.start, prev.pitches))
            cut += 1
        out.append(event)
    return out, cut


def chord_events(notes: Sequence[tuple[Q, Q, int]], chords: bool) -> list[Event]:
    """Notes → events; with ``chords`` notes that start and end together share one event."""
    if not chords:
        return [Event(s, e, (p,)) for s, e, p in notes]
    grouped: dict[tuple[Q, Q], list[int]] = {}
    for s, e, p in notes:
        grouped.setdefault((s, e), []).append(p)
    return [Event(s, e, tuple(sorted(set(ps)))) for (s, e), ps in grouped.items()]
