"""How much a generated piece copies from the training pieces.

A model that reproduces a training piece note for note has memorised it rather than learnt a
style, so the evaluation reports the longest run of notes (and the bars it spans) that a
generated piece shares with any one training piece, and flags runs of ``NOVELTY_FLAG_BARS``
bars or more.

Notes are compared as intervals and durations on a beat grid, so a copy transposed to
another key, written at another resolution or played at another tempo still counts.
The search uses polynomial rolling hashes of n-grams (one sorted table per length, shared
by all queries) and confirms every reported run by comparing the codes themselves: a hash
collision can cost time but never inflates a result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from composer.evaluate.rolling_hash import HASH_BASE, first_not_below, gram_hashes, mix, prefix_hashes
from composer.music.facts import FINGERPRINT_GRID, downbeats, pitched_notes

if TYPE_CHECKING:
    import symusic

NOVELTY_FLAG_BARS = 4  # a copied run spanning this many bars is flagged as plagiarism


STEPS_PER_QUARTER = FINGERPRINT_GRID  # 1/12 beat: sixteenths and triplets both land on it


MAX_INTERVAL = 48  # semitones; wider leaps are clipped


MAX_STEPS = STEPS_PER_QUARTER * 16  # onset gaps and durations longer than 16 beats are clipped


_STEP_VALUES = MAX_STEPS + 1


_ANCHOR = 8  # lengths up to this get a shared table; longer runs grow from anchor matches


_MAX_PAIRS = 1 << 21  # (query, training) candidate pairs processed at once


def note_code(interval: int | np.ndarray, gap: int | np.ndarray,
              length: int | np.ndarray) -> np.ndarray:
    """Pack (interval, onset gap in steps, duration in steps) into one int64, clipping each.

    One integer per note lets a run of notes be compared, hashed and sorted as a run of integers.
    """
    interval = np.clip(np.asarray(interval, dtype=np.int64), -MAX_INTERVAL, MAX_INTERVAL)
    gap = np.clip(np.asarray(gap, dtype=np.int64), 0, MAX_STEPS)
    length = np.clip(np.asarray(length, dtype=np.int64), 0, MAX_STEPS)
    return ((interval + MAX_INTERVAL) * _STEP_VALUES + gap) * _STEP_VALUES + length


@dataclass(frozen=True, eq=False)
class NoteSequence:
    """A piece's pitched notes in (onset, pitch) order: one code per note plus its ticks.

    The codes are what is compared; onsets and ends (ticks of the piece) map a copied run
    back to bars.
    """

    codes: np.ndarray  # (N,) int64, see note_code
    onsets: np.ndarray  # (N,) int64 ticks
    ends: np.ndarray  # (N,) int64 ticks

    def __len__(self) -> int:
        return int(self.codes.size)


def note_sequence(score: symusic.Score) -> NoteSequence:
    """Every non-drum note of every track, coded relative to the note before it.

    Intervals instead of pitches make the code transposition-invariant; onset gaps and
    durations in twelfths of a beat make it independent of tempo and of ticks per quarter.
    The first note's interval and gap are 0, so it matches any piece's first note of that length.
    A passage lifted from the middle of a piece therefore matches from its second note on:
    its first note's interval and gap are measured from whatever precedes it.
    """
    notes = pitched_notes(score)
    onsets, durations, pitches = notes[:, 0], notes[:, 1], notes[:, 2]
    order = np.lexsort((pitches, onsets))
    onsets, durations, pitches = onsets[order], durations[order], pitches[order]
    step = max(1, score.ticks_per_quarter) / STEPS_PER_QUARTER
    interval = np.diff(pitches, prepend=pitches[:1])
    gap = np.rint(np.diff(onsets, prepend=onsets[:1]) / step).astype(np.int64)
    length = np.rint(durations / step).astype(np.int64)
    return NoteSequence(codes=note_code(interval, gap, length).reshape(-1),
                        onsets=onsets.copy(), ends=(onsets + durations).astype(np.int64))


@dataclass(frozen=True, eq=False)
class _Table:
    """The sorted entries of one n-gram length, and where each bucket of high bits begins.

    Looking a key up in its bucket reads two or three cache lines; a binary search over
    millions of entries reads some twenty: ``np.searchsorted`` made queries two to three
    times slower.
    """

    entries: np.ndarray  # (G,) uint64, sorted: hash high bits | gram start
    directory: np.ndarray  # (2**bits + 1,) int64: bucket b is entries[directory[b]:directory[b+1]]
    shift: np.uint64  # 64 - bits

    @classmethod
    def build(cls, entries: np.ndarray, size: int) -> _Table:
        # about four entries a bucket, and never into the low bits that hold the start
        bits = max(1, min(size.bit_length() - 2, 63 - size.bit_length()))
        shift = np.uint64(64 - bits)
        counts = np.bincount((entries >> shift).view(np.int64), minlength=1 << bits)
        return cls(entries=entries, directory=np.concatenate([[0], np.cumsum(counts)]), shift=shift)

    def ranges(self, keys: np.ndarray, mask: np.uint64) -> tuple[np.ndarray, np.ndarray]:
        """[left, right) of the entries whose high bits equal each key's (keys carry no low bits)."""
        bucket = (keys >> self.shift).astype(np.int64)
        low, high = self.directory[bucket], self.directory[bucket + 1]
        left = first_not_below(self.entries, keys, low, high, strictly=False)
        right = first_not_below(self.entries, keys | mask, left, high, strictly=True)
        return left, right


@dataclass(eq=False)
class CopyIndex:
    """All training pieces' codes end to end, with their rolling hashes.

    ``room[p]`` counts the notes from p to the end of p's piece, so n-grams that would
    cross into the next piece are never indexed. Tables of n-gram hashes are built on first
    use and kept, so every query shares them.

    A table entry is one uint64: the gram's hash with its low bits replaced by the gram's
    start. Sorting plain integers is four times faster than an argsort and takes half the
    memory; the shorter hash only adds candidates, which the exact check discards.
    """

    codes: np.ndarray  # (M,) int64
    room: np.ndarray  # (M,) int64
    piece_starts: np.ndarray  # (P+1,) int64: piece k is codes[piece_starts[k]:piece_starts[k+1]]
    names: tuple[str, ...]
    base: int
    prefix: np.ndarray  # (M+1,) uint64
    inverse: np.ndarray  # (M+1,) uint64
    _tables: dict[int, _Table] = field(default_factory=dict, repr=False)

    @property
    def position_mask(self) -> np.uint64:
        """The low bits of a table entry that hold the gram's start."""
        return np.uint64((1 << max(1, int(self.codes.size).bit_length())) - 1)

    def table(self, n: int) -> _Table:
        """Sorted entries (hash high bits | start) of every n-gram inside one piece, cached."""
        got = self._tables.get(n)
        if got is None:
            count = max(0, self.codes.size - n + 1)  # grams of n codes, some across pieces
            hashes = self.prefix[n:n + count] - self.prefix[:count]  # slices: no gathers
            hashes *= self.inverse[:count]
            inside = self.room[:count] >= n
            starts = np.flatnonzero(inside)
            entries = mix(hashes[inside])
            entries &= ~self.position_mask
            entries |= starts.view(np.uint64)
            entries.sort()
            got = _Table.build(entries, int(self.codes.size))
            self._tables[n] = got
        return got

    def locate(self, position: int) -> tuple[str, int]:
        """The name of the piece holding a position, and the position's note index in it."""
        piece = int(np.searchsorted(self.piece_starts, position, side="right")) - 1
        return self.names[piece], position - int(self.piece_starts[piece])


def build_copy_index(sequences: Sequence[NoteSequence], names: Sequence[str]) -> CopyIndex:
    """Index the training pieces once so that many generated pieces can be checked against them."""
    if len(sequences) != len(names):
        raise ValueError(f"{len(sequences)} sequences but {len(names)} names")
    sizes = np.array([len(seq) for seq in sequences], dtype=np.int64)
    piece_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    codes = np.zeros(0, dtype=np.int64)
    if sequences:
        codes = np.concatenate([seq.codes for seq in sequences]).astype(np.int64, copy=False)
    room = np.repeat(piece_starts[1:], sizes)
    room -= np.arange(codes.size, dtype=np.int64)
    prefix, inverse = prefix_hashes(codes, HASH_BASE)
    return CopyIndex(codes=codes, room=room, piece_starts=piece_starts, names=tuple(names),
                     base=HASH_BASE, prefix=prefix, inverse=inverse)


@dataclass(frozen=True)
class CopiedRun:
    """The longest run of a piece's notes found note for note in one training piece.

    ``start`` indexes the piece's NoteSequence; ``source_start`` the training piece's.
    """

    notes: int
    start: int
    source: str | None
    source_start: int = 0


class _Query:
    """A generated piece's codes and hashes, compared against one index."""

    def __init__(self, index: CopyIndex, codes: np.ndarray) -> None:
        self.index = index
        self.codes = codes.astype(np.int64)
        self.prefix, self.inverse = prefix_hashes(self.codes, index.base)

    def common_prefix(self, start: int, position: int, limit: int) -> int:
        """Exact length of the shared run at (start, position), at most ``limit`` notes."""
        ours = self.codes[start:start + limit]
        theirs = self.index.codes[position:position + limit]
        differ = np.flatnonzero(ours != theirs)
        return int(differ[0]) if differ.size else limit

    def matches(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Query starts whose n-gram hash is in the table, with each one's range in the table."""
        table, mask = self.index.table(n), self.index.position_mask
        starts = np.arange(self.codes.size - n + 1)
        ours = mix(gram_hashes(self.prefix, self.inverse, starts, n)) & ~mask
        left, right = table.ranges(ours, mask)
        hit = right > left
        return starts[hit], left[hit], right[hit]

    def witness(self, n: int) -> tuple[int, int] | None:
        """A (query start, training position) pair sharing n codes exactly, or None.

        The hash table proposes; the codes decide, so a collision never counts as a copy.
        """
        if n > self.codes.size:
            return None
        table, mask = self.index.table(n), self.index.position_mask
        steps = np.arange(n)
        for start, left, right in zip(*self.matches(n), strict=True):
            candidates = (table.entries[left:right] & mask).astype(np.int64)
            same = (self.index.codes[candidates[:, None] + steps] == self.codes[start:start + n]).all(axis=1)
            if same.any():
                return int(start), int(candidates[int(np.argmax(same))])
        return None

    def extend(self, best: tuple[int, int, int]) -> tuple[int, int, int]:
        """The longest run, given one of ``_ANCHOR`` notes: (notes, query start, training position).

        Every longer copied run starts with an anchor-length match, so the candidates are the
        anchor table's matches. Each pair's run length is found by binary search on hash
        equality, which can only overestimate (on a collision); pairs are then checked
        exactly in decreasing order until none can beat the best confirmed run.
        """
        table = self.index.table(_ANCHOR)
        starts, left, right = self.matches(_ANCHOR)
        counts = right - left
        begin = 0
        while begin < starts.size:
            stop = begin + max(1, int(np.searchsorted(np.cumsum(counts[begin:]), _MAX_PAIRS, side="right")))
            best = self._extend_pairs(best, table, starts[begin:stop], left[begin:stop],
                                      counts[begin:stop])
            begin = stop
        return best

    def _extend_pairs(self, best: tuple[int, int, int], table: _Table, starts: np.ndarray,
                      left: np.ndarray, counts: np.ndarray) -> tuple[int, int, int]:
        total = int(counts.sum())
        offsets = np.cumsum(counts) - counts
        ours = np.repeat(starts, counts)
        entries = table.entries[np.repeat(left - offsets, counts) + np.arange(total)]
        theirs = (entries & self.index.position_mask).astype(np.int64)
        index = self.index
        # A pair whose previous notes also agree (in the same piece) is beaten by the pair
        # before it, itself a candidate: dropping it keeps repeated notes from multiplying work.
        before = (ours > 0) & (index.room[np.maximum(theirs - 1, 0)] == index.room[theirs] + 1)
        before[before] = self.codes[ours[before] - 1] == index.codes[theirs[before] - 1]
        ours, theirs = ours[~before], theirs[~before]
        low = np.full(ours.size, _ANCHOR, dtype=np.int64)  # the anchor keys agree
        high = np.minimum(self.codes.size - ours, index.room[theirs])
        while True:
            active = low < high
            if not active.any():
                break
            middle = (low + high + 1) // 2
            equal = (gram_hashes(self.prefix, self.inverse, ours, np.where(active, middle, low))
                     == gram_hashes(index.prefix, index.inverse, theirs, np.where(active, middle, low)))
            low = np.where(active & equal, middle, low)
            high = np.where(active & ~equal, middle - 1, high)
        for k in np.lexsort((theirs, ours, -low)):
            if low[k] <= best[0]:
                break
            exact = self.common_prefix(int(ours[k]), int(theirs[k]), int(low[k]))
            if exact > best[0]:
                best = (exact, int(ours[k]), int(theirs[k]))
        return best


def longest_copied_run(index: CopyIndex, seq: NoteSequence) -> CopiedRun:
    """The longest run of consecutive codes of ``seq`` found consecutively in one training piece.

    Copying is monotone (a copied run of n notes contains copied runs of every shorter
    length), so the length is found by bisection, each step asking the shared table of
    that length; beyond ``_ANCHOR`` notes, runs are grown from anchor matches
    instead of building a table per length.
    """
    size = len(seq)
    if size == 0 or index.codes.size == 0:
        return CopiedRun(notes=0, start=0, source=None)
    query = _Query(index, seq.codes)
    limit = min(size, _ANCHOR)
    found, witness, failed = 0, None, limit + 1
    while failed - found > 1:
        # the anchor length first: a copy goes straight on to growing, and short lengths,
        # whose table ranges are long (every repeated note), are asked only when needed
        middle = limit if witness is None and failed == limit + 1 else (found + failed) // 2
        got = query.witness(middle)
        if got is None:
            failed = middle
        else:
            found, witness = middle, got
    if witness is None:
        return CopiedRun(notes=0, start=0, source=None)
    best = (found, witness[0], witness[1])
    if found == _ANCHOR and size > _ANCHOR:
        best = query.extend(best)
    notes, start, position = best
    source, source_start = index.locate(position)
    return CopiedRun(notes=notes, start=start, source=source, source_start=source_start)


def copied_bars(score: symusic.Score, seq: NoteSequence, run: CopiedRun) -> int:
    """Bars from the one holding the run's first onset to the one holding its last, inclusive.

    Bars, not notes, are what a listener recognises and what the flag threshold is set in.
    """
    if run.notes <= 0:
        return 0
    bars = downbeats(score)
    first = int(seq.onsets[run.start])
    last = int(seq.onsets[run.start + run.notes - 1])
    if bars.size == 0:
        return 1
    bar_of = np.searchsorted(bars, [first, last], side="right") - 1
    return int(bar_of[1] - bar_of[0]) + 1


@dataclass(frozen=True)
class NoveltyResult:
    """The longest copied run of one generated piece, in notes and bars, and whether to flag it."""

    notes: int
    bars: int
    source: str | None
    flagged: bool


def measure_novelty(index: CopyIndex, score: symusic.Score) -> NoveltyResult:
    """How much of ``score`` is copied from the indexed training pieces; flagged at 4+ bars."""
    seq = note_sequence(score)
    run = longest_copied_run(index, seq)
    bars = copied_bars(score, seq, run)
    return NoveltyResult(notes=run.notes, bars=bars, source=run.source, flagged=bars >= NOVELTY_FLAG_BARS)
