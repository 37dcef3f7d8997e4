"""Novelty: the longest run copied from a training piece, in notes and bars, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from composer.evaluate import novelty, rolling_hash
from composer.evaluate.novelty import (
    NOVELTY_FLAG_BARS,
    CopiedRun,
    NoteSequence,
    build_copy_index,
    copied_bars,
    longest_copied_run,
    measure_novelty,
    note_code,
    note_sequence,
)

Notes = list[tuple[float, float, int]]  # (start, length, pitch) in quarter notes

# Every training length is a multiple of half a beat (6 steps of 1/12 beat).
A_MELODY: Notes = [
    (0, 1, 60), (1, 0.5, 62), (1.5, 0.5, 64), (2, 1, 65), (3, 1, 67),  # bar 1: 5 notes
    (4, 0.5, 69), (4.5, 0.5, 67), (5, 1, 65), (6, 2, 64),  # bar 2: 4
    (8, 1, 62), (9, 1, 64), (10, 0.5, 65), (10.5, 0.5, 67), (11, 1, 69),  # bar 3: 5
    (12, 1, 71), (13, 1, 72), (14, 1, 67), (15, 1, 60),  # bar 4: 4
]
A_BASS: Notes = [(0, 4, 48), (4, 4, 53), (8, 4, 55), (12, 4, 48)]  # one per bar
A_NOTES = len(A_MELODY) + len(A_BASS)  # 22
A_FIRST_THREE_BARS = 5 + 4 + 5 + 3  # 17 notes start before beat 12

B_MELODY: Notes = [
    (0, 1, 60), (1, 1, 59), (2, 0.5, 57), (2.5, 0.5, 55), (3, 1, 57),  # bar 1: 5 notes
    (4, 1.5, 59), (5.5, 0.5, 60), (6, 2, 62),
    (8, 1, 64), (9, 1, 62), (10, 1, 60), (11, 1, 59),
    (12, 4, 60),
]


def c_melody() -> Notes:
    """Six bars of 3/4 in quarters and eighths, steps of at most a third."""
    rng = np.random.default_rng(3)
    notes: Notes = []
    start, pitch = 0.0, 67
    while start < 18:
        length = float(rng.choice([0.5, 1.0]))
        notes.append((start, length, pitch))
        start += length
        pitch += int(rng.integers(-4, 5))
    return notes


def make_score(parts: list[Notes], *, meter: tuple[int, int] = (4, 4), tpq: int = 480,
               qpm: float = 100.0, drums: Notes | None = None) -> symusic.Score:
    score = symusic.Score(tpq)
    for notes in parts:
        track = symusic.Track("part", 0, False)
        for start, length, pitch in notes:
            track.notes.append(symusic.Note(round(start * tpq), round(length * tpq), pitch, 80))
        score.tracks.append(track)
    if drums is not None:
        track = symusic.Track("drums", 0, True)
        for start, length, pitch in drums:
            track.notes.append(symusic.Note(round(start * tpq), round(length * tpq), pitch, 80))
        score.tracks.append(track)
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    score.tempos.append(symusic.Tempo(0, qpm))
    return score


def shifted(notes: Notes, beats: float = 0, semitones: int = 0) -> Notes:
    return [(start + beats, length, pitch + semitones) for start, length, pitch in notes]


@pytest.fixture(scope="module")
def index() -> novelty.CopyIndex:
    scores = [make_score([A_MELODY, A_BASS]), make_score([B_MELODY]), make_score([c_melody()], meter=(3, 4))]
    return build_copy_index([note_sequence(score) for score in scores], ["A", "B", "C"])


def sequence(codes: list[int]) -> NoteSequence:
    """Codes without a score behind them, for the search itself."""
    array = np.asarray(codes, dtype=np.int64)
    onsets = np.arange(array.size, dtype=np.int64) * 480
    return NoteSequence(codes=array, onsets=onsets, ends=onsets + 480)


def brute_force(train: list[list[int]], query: list[int]) -> int:
    best = 0
    for piece in train:
        for i in range(len(query)):
            for p in range(len(piece)):
                k = 0
                while i + k < len(query) and p + k < len(piece) and query[i + k] == piece[p + k]:
                    k += 1
                best = max(best, k)
    return best


def test_codes_are_intervals_gaps_and_lengths_in_twelfths_of_a_beat() -> None:
    # a quarter C, then E (eighth) and G (quarter) together on beat 2; the drum is ignored
    score = make_score([[(0, 1, 60), (1, 0.5, 64)], [(1, 1, 67)]], drums=[(0, 1, 36)])
    seq = note_sequence(score)
    assert seq.codes.tolist() == [note_code(0, 0, 12), note_code(4, 12, 6), note_code(3, 0, 12)]
    assert seq.onsets.tolist() == [0, 480, 480]
    assert seq.ends.tolist() == [480, 720, 960]
    assert note_code(0, 0, 0) == 48 * 193 * 193  # interval, gap, length: 97 × 193 × 193 codes
    assert note_code(60, 1000, -3) == note_code(48, 192, 0)  # clipped


def test_verbatim_copy_is_the_whole_piece(index: novelty.CopyIndex) -> None:
    result = measure_novelty(index, make_score([A_MELODY, A_BASS]))
    assert result == novelty.NoveltyResult(notes=A_NOTES, bars=4, source="A", flagged=True)
    c = measure_novelty(index, make_score([c_melody()], meter=(3, 4)))
    assert (c.notes, c.bars, c.source) == (len(c_melody()), 6, "C")


def test_transposed_retimed_or_with_drums_is_still_a_copy(index: novelty.CopyIndex) -> None:
    transposed = make_score([shifted(A_MELODY, semitones=5), shifted(A_BASS, semitones=5)])
    assert measure_novelty(index, transposed) == novelty.NoveltyResult(A_NOTES, 4, "A", True)
    other_resolution = make_score([A_MELODY, A_BASS], tpq=960, qpm=140, drums=[(0, 0.25, 42)] * 3)
    assert measure_novelty(index, other_resolution) == novelty.NoveltyResult(A_NOTES, 4, "A", True)


def test_three_copied_bars_then_fresh_notes(index: novelty.CopyIndex) -> None:
    rng = np.random.default_rng(0)
    fresh: Notes = [(12 + k * 5 / 12, 5 / 12, int(rng.integers(50, 80))) for k in range(24)]
    head = [note for note in A_MELODY + A_BASS if note[0] < 12]
    score = make_score([head + fresh])
    seq = note_sequence(score)
    run = longest_copied_run(index, seq)
    # five-twelfths of a beat is no training length, so the first fresh note ends the run
    assert run == CopiedRun(notes=A_FIRST_THREE_BARS, start=0, source="A", source_start=0)
    assert copied_bars(score, seq, run) == 3
    assert measure_novelty(index, score) == novelty.NoveltyResult(A_FIRST_THREE_BARS, 3, "A", False)


def test_runs_do_not_cross_training_pieces(index: novelty.CopyIndex) -> None:
    # A's last bar, then B's first bar starting on A's last note (same onset, pitch and length):
    # sorted, the codes are [bass 48 (first note)] + A's last 4 melody codes + B's first 5 codes,
    # which sit end to end in the index; only 5 of them come from one piece.
    last_bar = shifted([note for note in A_MELODY + A_BASS if note[0] >= 12], beats=-12)
    first_bar = shifted([note for note in B_MELODY if note[0] < 4], beats=3)
    score = make_score([last_bar, first_bar])
    seq = note_sequence(score)
    assert len(seq) == 10
    run = longest_copied_run(index, seq)
    assert run == CopiedRun(notes=5, start=5, source="B", source_start=0)

    codes = build_copy_index([sequence([1, 2, 3, 4, 5]), sequence([6, 7, 8, 9])], ["a", "b"])
    assert longest_copied_run(codes, sequence([3, 4, 5, 6, 7])) == CopiedRun(3, 0, "a", 2)
    assert longest_copied_run(codes, sequence([4, 5, 6, 7, 8, 9])) == CopiedRun(4, 2, "b", 0)


def test_novel_piece_has_a_short_run(index: novelty.CopyIndex) -> None:
    rng = np.random.default_rng(1)
    notes: Notes = [(k, 1, int(rng.integers(40, 90))) for k in range(32)]
    result = measure_novelty(index, make_score([notes]))
    assert result.notes <= 3
    assert result.bars <= 1
    assert not result.flagged


def test_empty_score_and_empty_index(index: novelty.CopyIndex) -> None:
    assert measure_novelty(index, symusic.Score(480)) == novelty.NoveltyResult(0, 0, None, False)
    empty = build_copy_index([], [])
    assert measure_novelty(empty, make_score([A_MELODY])) == novelty.NoveltyResult(0, 0, None, False)
    assert copied_bars(symusic.Score(480), sequence([]), CopiedRun(0, 0, None)) == 0
    with pytest.raises(ValueError):
        build_copy_index([sequence([1])], [])


def test_flag_threshold_is_four_bars(index: novelty.CopyIndex) -> None:
    assert NOVELTY_FLAG_BARS == 4
    four_bars = make_score([B_MELODY])  # 13 notes over 4 bars, all copied
    assert measure_novelty(index, four_bars) == novelty.NoveltyResult(13, 4, "B", True)
    three_bars = make_score([[note for note in B_MELODY if note[0] < 12]])
    assert measure_novelty(index, three_bars) == novelty.NoveltyResult(12, 3, "B", False)


def test_long_runs_grow_past_the_anchor_exactly() -> None:
    train = [list(range(100, 160)), list(range(200, 260))]
    built = build_copy_index([sequence(codes) for codes in train], ["x", "y"])
    query = [7, 8, *train[1][5:45], 9, *train[0][:20]]
    assert longest_copied_run(built, sequence(query)) == CopiedRun(40, 2, "y", 5)
    # repeated notes: every anchor of the query matches everywhere in the long repeat
    repeats = build_copy_index([sequence([1] * 12 + [2]), sequence([3] + [1] * 50)], ["short", "long"])
    assert longest_copied_run(repeats, sequence([1] * 30 + [2])) == CopiedRun(30, 0, "long", 1)
    assert longest_copied_run(repeats, sequence([4] + [1] * 11 + [2])) == CopiedRun(12, 1, "short", 1)


def test_hash_collisions_cannot_inflate_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # With base 1 a gram's hash is the sum of its codes, so any reordering collides.
    monkeypatch.setattr(novelty, "HASH_BASE", 1)
    train = list(range(1, 31))
    built = build_copy_index([sequence(train)], ["t"])
    query = [*train[:10], train[11], train[10], *train[12:20]]  # 20 codes, exactly 10 copied
    prefix, inverse = rolling_hash.prefix_hashes(np.asarray(query), 1)
    starts = np.array([0])
    assert (rolling_hash.gram_hashes(prefix, inverse, starts, 20)
            == rolling_hash.gram_hashes(built.prefix, built.inverse, starts, 20)).all()  # they collide
    assert longest_copied_run(built, sequence(query)) == CopiedRun(10, 0, "t", 0)
    # short grams too: (2, 1) has the hash of (1, 2), yet only one code is copied
    assert longest_copied_run(build_copy_index([sequence([1, 2, 3])], ["s"]), sequence([2, 1, 7])).notes == 1


@pytest.mark.parametrize("base", [1, 3, novelty.HASH_BASE])
def test_matches_brute_force_on_small_alphabets(monkeypatch: pytest.MonkeyPatch, base: int) -> None:
    monkeypatch.setattr(novelty, "HASH_BASE", base)
    rng = np.random.default_rng(base % 1000)
    train = [rng.integers(0, 3, size=int(rng.integers(0, 40))).tolist() for _ in range(12)]
    built = build_copy_index([sequence(codes) for codes in train], [f"p{k}" for k in range(12)])
    for _ in range(25):
        query = rng.integers(0, 3, size=int(rng.integers(0, 50))).tolist()
        donor = train[int(rng.integers(0, 12))]
        if donor and rng.random() < 0.7:  # plant a copy of up to 30 codes
            a = int(rng.integers(0, len(donor)))
            b = int(rng.integers(a, min(len(donor), a + 30) + 1))
            at = int(rng.integers(0, len(query) + 1))
            query = query[:at] + donor[a:b] + query[at:]
        run = longest_copied_run(built, sequence(query))
        assert run.notes == brute_force(train, query)
        if run.notes:
            source = train[int(run.source[1:])]
            copied = query[run.start:run.start + run.notes]
            assert source[run.source_start:run.source_start + run.notes] == copied
