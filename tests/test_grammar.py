from __future__ import annotations

import numpy as np
import pytest
import symusic
from test_tokenizer import Tiny, build_tiny

from composer.generate.decode import row_mask
from composer.tokens.grammar import TokenGrammar
from composer.tokens.shards import read_split


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return build_tiny(tmp_path_factory)


@pytest.fixture(scope="module")
def grammar(tiny: Tiny) -> TokenGrammar:
    return tiny.tokenizer.grammar


def _walk(grammar: TokenGrammar, rng: np.random.Generator, *, steps: int = 300, bars: int | None = None,
          control: np.ndarray | None = None) -> list[int]:
    """A random walk the way ``decode`` walks: ``row_mask`` offers the entries, a bar line
    past ``bars`` ends the piece (``grammar.closing``), and once ``steps`` entries are
    written every bar is forced to close until the piece has its bars, then it is closed."""
    target = 0 if bars is None else bars
    state, opened, ids = grammar.start_state, 0, []
    while not grammar.is_complete(state):
        out_of_steps = len(ids) >= steps
        if out_of_steps and opened >= target:
            return ids + grammar.closing(state, control)
        choices = np.flatnonzero(row_mask(grammar, state, opened, target, control, force_bar=out_of_steps))
        assert len(choices), f"dead end in {grammar.states[state]}"
        entry = int(rng.choice(choices))
        if bars is not None and grammar.bars_in_entry[entry] and opened >= bars:
            return ids + grammar.closing(state, control)
        state = grammar.next_state(state, entry)
        assert state >= 0
        opened += int(grammar.bars_in_entry[entry])
        ids.append(entry)
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
            state, _ = grammar.walk(seq)  # raises ValueError naming the first refused id
            assert grammar.is_complete(state) and grammar.accepts(seq), (row, tiny.tokenizer.tokens(seq[:40]))
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
    with pytest.raises(ValueError, match=r"id \d+ at position 2 is not allowed"):
        grammar.walk([style, ids["Bar_None"], ids["Pitch_60"]])  # a bar opens with its meter


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
        ids = _walk(grammar, rng, steps=int(rng.integers(5, 600)), bars=bars)
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


# ---- row_mask: the mask decode applies at every step ----------------------------------------


def _playing(grammar: TokenGrammar) -> list[int]:
    """Every state but the end (where decoding has stopped)."""
    return [s for s in range(grammar.n_states) if s != grammar.end_state]


def test_row_mask_is_the_grammar_with_no_end_before_the_last_bar(grammar: TokenGrammar) -> None:
    eos = grammar.eos_id
    for state in _playing(grammar):
        allowed = grammar.allowed[state]
        assert np.array_equal(row_mask(grammar, state, 4, 4, None), allowed)  # the last bar: all of it
        early = row_mask(grammar, state, 3, 4, None)
        assert not early[eos] and early.any()
        assert np.array_equal(early | (np.arange(len(allowed)) == eos) & allowed, allowed)
    closable = np.flatnonzero(grammar.can_end)
    assert len(closable) and all(row_mask(grammar, s, 4, 4, None)[eos] for s in closable)


def test_force_bar_offers_bar_lines_or_steps_towards_a_complete_note(grammar: TokenGrammar) -> None:
    opened_at_once = stepped = 0
    for state in _playing(grammar):
        allowed = grammar.allowed[state]
        mask = row_mask(grammar, state, 1, 4, None, force_bar=True)
        assert mask.any() and not (mask & ~allowed).any() and not mask[grammar.eos_id]
        opening = allowed & (grammar.bars_in_entry > 0)
        if opening.any():  # a bar may open here: only bar lines are offered
            assert np.array_equal(mask, opening)
            opened_at_once += 1
            continue
        after = grammar.transition[state]
        closer = allowed & (grammar.steps_to_end[np.maximum(after, 0)] < grammar.steps_to_end[state])
        closer[grammar.eos_id] = False
        assert np.array_equal(mask, closer)  # mid-note: every step closer to a complete note, no other
        stepped += 1
    assert opened_at_once and stepped
    # and forcing always gets to the next bar line, within a few entries, from anywhere
    rng = np.random.default_rng(0)
    for start in _playing(grammar):
        state = start
        for _ in range(12):
            entry = int(rng.choice(np.flatnonzero(row_mask(grammar, state, 1, 4, None, force_bar=True))))
            state = grammar.next_state(state, entry)
            if grammar.bars_in_entry[entry]:
                break
        else:
            pytest.fail(f"forcing from {grammar.states[start]} opens no bar")


def test_controls_narrow_the_row_and_fall_back_to_the_grammar(tiny: Tiny, grammar: TokenGrammar) -> None:
    control = grammar.control_mask(pitch_range=(60, 72), programs=[40])
    pitch_states = [s for s in _playing(grammar) if grammar.states[s].phase == "expect_pitch"]
    assert pitch_states
    for state in _playing(grammar):
        for bars in (3, 4):
            plain = row_mask(grammar, state, bars, 4, None)
            narrowed = row_mask(grammar, state, bars, 4, control)
            assert np.array_equal(narrowed, plain & control if (plain & control).any() else plain)
            assert narrowed.any()
    for state in pitch_states:
        offered = tiny.tokenizer.tokens(np.flatnonzero(row_mask(grammar, state, 4, 4, control)))
        pitches = {int(t[6:]) for t in offered if t.startswith("Pitch_")}
        assert pitches and min(pitches) >= 60 and max(pitches) <= 72
        assert {t for t in offered if t.startswith("Program_")} <= {"Program_40"}
    nothing = np.zeros(grammar.transition.shape[1], dtype=bool)  # a control that allows nothing
    for state in _playing(grammar):
        assert np.array_equal(row_mask(grammar, state, 4, 4, nothing), grammar.allowed[state])
        assert np.array_equal(row_mask(grammar, state, 3, 4, nothing), row_mask(grammar, state, 3, 4, None))


def test_closing_opens_no_bar_and_keeps_to_the_control(tiny: Tiny, grammar: TokenGrammar) -> None:
    control = grammar.control_mask(pitch_range=(60, 64), pitch_classes=[0, 4], programs=[40])
    in_bar = [s for s in _playing(grammar) if grammar.states[s].meter is not None]
    for state in in_bar:
        tail = grammar.closing(state, control)
        assert tail[-1] == grammar.eos_id and grammar.bars_done(tail) == 0
        assert all(control[entry] for entry in tail), tiny.tokenizer.tokens(tail)
        at = state
        for entry in tail:
            at = grammar.next_state(at, entry)
        assert grammar.is_complete(at)
    # where the control leaves no bar-free way to the end, the bar count still wins
    nothing = np.zeros(grammar.transition.shape[1], dtype=bool)
    everything = ~nothing
    for state in _playing(grammar):
        assert grammar.closing(state, everything) == grammar.closing(state)  # one rule, two searches
        if state in in_bar:
            assert grammar.closing(state, nothing) == grammar.closing(state)
            assert grammar.bars_done(grammar.closing(state)) == 0
