from __future__ import annotations

import numpy as np
import pytest
import symusic
from test_tokenizer import Tiny, build_tiny

from composer.tokens.grammar import GrammarCursor, TokenGrammar
from composer.tokens.shards import read_split


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return build_tiny(tmp_path_factory)


@pytest.fixture(scope="module")
def grammar(tiny: Tiny) -> TokenGrammar:
    return tiny.tokenizer.grammar


def _walk(grammar: TokenGrammar, rng: np.random.Generator, *, steps: int = 300, max_bars: int | None = None,
          control: np.ndarray | None = None, min_bars: int = 0) -> list[int]:
    """A random walk over allowed entries, closed by a shortest ending when ``steps`` run out."""
    cursor = GrammarCursor(grammar)
    ids: list[int] = []
    for _ in range(steps):
        mask = cursor.mask(max_bars=max_bars, control=control)
        if cursor.bars < min_bars:
            mask[grammar.eos_id] = False
        choices = np.flatnonzero(mask)
        assert len(choices), f"dead end in {grammar.states[cursor.state]}"
        entry = int(rng.choice(choices))
        cursor.step(entry)
        ids.append(entry)
        if cursor.is_complete:
            return ids
    while cursor.bars < min_bars:  # open the bars still missing (finishing a note first)
        openers = np.flatnonzero(cursor.mask(max_bars=max_bars, control=control)
                                 & (grammar.bars_in_entry > 0))
        entry = int(openers[0]) if len(openers) else grammar.ending(cursor.state, control)[0]
        cursor.step(entry)
        ids.append(entry)
    for entry in grammar.ending(cursor.state, control):
        cursor.step(entry)
        ids.append(entry)
    assert cursor.is_complete
    return ids


def test_table_is_small_dense_and_consistent(tiny: Tiny, grammar: TokenGrammar) -> None:
    n_states, vocab = grammar.transition.shape
    assert vocab == tiny.tokenizer.vocab_size
    assert n_states == len(grammar.states) < 200
    assert grammar.transition.dtype == np.int16 and grammar.allowed.dtype == bool
    assert np.array_equal(grammar.allowed, grammar.transition >= 0)
    assert grammar.nbytes() < 8 * 1024 * 1024
    assert grammar.transition.min() >= -1 and grammar.transition.max() < n_states
    ends = {grammar.states[s].phase for s in np.flatnonzero(grammar.can_end)}
    assert ends == {"after_note"}
    assert grammar.allowed.any(axis=1).all()  # no state without a way on
    assert (grammar.steps_to_end <= 10).all()  # every state can reach the end, quickly


def test_bpe_entries_are_checked_by_walking_their_base_tokens(grammar: TokenGrammar) -> None:
    rng = np.random.default_rng(1)
    multi = [v for v, e in enumerate(grammar.entries) if len(e) > 1]
    assert multi
    for v in rng.choice(multi, size=min(200, len(multi)), replace=False):
        for state in range(grammar.n_states):
            cur = state
            for base in grammar.entries[v]:
                cur = int(grammar.base_transition[cur, base]) if cur >= 0 else -1
            assert grammar.transition[state, v] == cur
    empty = [v for v, e in enumerate(grammar.entries) if not e]
    assert not grammar.allowed[:, empty].any()  # BPE's bare word marker is never allowed
    bars = np.array([sum(grammar.base_vocab[b] == "Bar_None" for b in e) for e in grammar.entries])
    assert np.array_equal(grammar.bars_in_entry, bars) and bars.max() == 1


def test_grammar_accepts_every_tokenized_sequence(tiny: Tiny, grammar: TokenGrammar) -> None:
    checked = 0
    for split in ("train", "val", "test"):
        ids, rows = read_split(tiny.tokens_dir, split)
        for row in rows:
            seq = ids[row["offset"]: row["offset"] + row["length"]]
            assert grammar.first_error(seq) is None, (row, tiny.tokenizer.tokens(seq[:40]))
            assert grammar.accepts(seq)
            checked += 1
    assert checked > 50  # transposed copies included


def test_grammar_refuses_broken_sequences(tiny: Tiny, grammar: TokenGrammar) -> None:
    tok = tiny.tokenizer
    ids = tok.base_ids
    style = tok.style_ids["bach"]
    assert not grammar.accepts([style, tok.eos_id])  # no piece without a note
    assert grammar.next_state(grammar.start_state, ids["Bar_None"]) == -1  # style first
    state, _ = grammar.walk([style, ids["Bar_None"], ids["TimeSig_3/4"]])
    assert grammar.next_state(state, ids["Position_71"]) >= 0  # 3 beats x 24 positions
    assert grammar.next_state(state, ids["Position_72"]) == -1  # beyond the bar
    at = grammar.next_state(state, ids["Position_0"])
    assert grammar.next_state(at, ids["Pitch_60"]) == -1  # a note starts with its program
    assert grammar.first_error([style, ids["Bar_None"], ids["Pitch_60"]]) == 2


def test_random_walks_always_decode_to_midi_with_notes(tiny: Tiny, grammar: TokenGrammar) -> None:
    rng = np.random.default_rng(0)
    for _ in range(25):
        ids = _walk(grammar, rng, steps=int(rng.integers(5, 400)))
        assert grammar.accepts(ids)
        score = tiny.tokenizer.decode_ids(ids)
        assert score.note_num() > 0
        again = symusic.Score.from_midi(score.dumps_midi())
        assert again.note_num() == score.note_num()


@pytest.mark.parametrize("bars", [1, 4, 9])
def test_generation_can_stop_after_exactly_n_bars(tiny: Tiny, grammar: TokenGrammar, bars: int) -> None:
    rng = np.random.default_rng(bars)
    for _ in range(4):
        ids = _walk(grammar, rng, steps=600, max_bars=bars, min_bars=bars)
        assert grammar.bars_done(ids) == bars
        tokens = tiny.tokenizer.tokens(ids)
        assert tokens.count("Bar_None") == bars
        score = tiny.tokenizer.decode_ids(ids)
        downbeats = np.asarray(score.get_downbeats())
        onsets = np.array([n.time for t in score.tracks for n in t.notes])
        assert onsets.max() >= downbeats[bars - 1]  # the last bar has notes
        if len(downbeats) > bars:
            assert onsets.max() < downbeats[bars]  # and nothing starts after it


def test_controls_are_masks_over_the_same_table(tiny: Tiny, grammar: TokenGrammar) -> None:
    tok = tiny.tokenizer
    c_major = [0, 2, 4, 5, 7, 9, 11]
    control = (grammar.control_mask(pitch_range=(55, 79), pitch_classes=c_major)
               & grammar.control_mask(programs=[40, 41], meters=["3/4"]))
    rng = np.random.default_rng(3)
    for _ in range(5):
        ids = _walk(grammar, rng, steps=300, control=control)
        assert grammar.accepts(ids)
        tokens = tok.tokens(ids)
        pitches = [int(t[6:]) for t in tokens if t.startswith("Pitch_")]
        assert pitches and all(55 <= p <= 79 and p % 12 in c_major for p in pitches)
        assert {t for t in tokens if t.startswith("Program_")} <= {"Program_40", "Program_41"}
        assert {t for t in tokens if t.startswith("TimeSig_")} == {"TimeSig_3/4"}
