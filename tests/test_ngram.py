from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

import composer.evaluate.ngram
from composer.evaluate.ngram import NGramModel, fit_ngram

# Tiny corpus, vocab 3 (2 bits per id). Position 0 (the style token 0) is context only.
#   targets (positions ≥ 1): 1 2 1 2 | 1 1      → N = 6, c(0) = 0, c(1) = 4, c(2) = 2
#   bigrams: (0,1)×2, (1,2)×2, (2,1)×1, (1,1)×1  (no (2,0): grams never cross sequences)
#   trigrams: (0,1,2), (1,2,1), (2,1,2), (0,1,1)  each ×1
CORPUS = [[0, 1, 2, 1, 2], [0, 1, 1]]


def fit(corpus: list[list[int]], order: int, vocab_size: int = 3) -> NGramModel:
    return fit_ngram([np.array(s, dtype=np.uint16) for s in corpus], order=order, vocab_size=vocab_size)


def next_probs(model: NGramModel, context: list[int]) -> np.ndarray:
    """P(w | context) for every w in the vocabulary (context[0] is the style token)."""
    seqs = [np.array([*context, w], dtype=np.uint16) for w in range(model.vocab_size)]
    return np.exp(-np.array([nll[-1] for nll in model.token_nll(seqs)]))


def p_of(model: NGramModel, context: list[int], w: int) -> float:
    return float(next_probs(model, context)[w])


def test_unigram_is_add_one_over_targets_only() -> None:
    model = fit(CORPUS, order=1)
    # P1(w) = (c(w) + 1) / (N + V) = (c(w) + 1) / (6 + 3)
    expected = [Fraction(0 + 1, 9), Fraction(4 + 1, 9), Fraction(2 + 1, 9)]  # 1/9, 5/9, 3/9
    for context in ([0], [0, 2, 2], [1, 1, 1, 1]):  # the unigram ignores context
        assert next_probs(model, context) == pytest.approx([float(f) for f in expected], rel=1e-12)
    nll = model.token_nll([np.array(CORPUS[0], dtype=np.uint16)])[0]
    # positions 1..4 hold 1 2 1 2; the style token at position 0 is never scored
    assert nll.shape == (4,)
    assert nll == pytest.approx([-math.log(5 / 9), -math.log(3 / 9)] * 2, rel=1e-12)


def test_bigram_witten_bell_by_hand() -> None:
    model = fit(CORPUS, order=2)
    # context h = 1: c(1,2) = 2, c(1,1) = 1 → c(h) = 3, T(h) = 2
    #   P2(2|1) = (2 + 2·3/9) / (3 + 2) = (8/3) / 5 = 8/15
    #   P2(1|1) = (1 + 2·5/9) / 5 = (19/9) / 5 = 19/45
    #   P2(0|1) = (0 + 2·1/9) / 5 = 2/45                          sum = (24 + 19 + 2)/45 = 1
    assert next_probs(model, [0, 1]) == pytest.approx([2 / 45, 19 / 45, 8 / 15], rel=1e-12)
    # context h = 0 (the style token): c(0,1) = 2 → c(h) = 2, T(h) = 1
    #   P2(1|0) = (2 + 1·5/9) / (2 + 1) = (23/9) / 3 = 23/27
    assert p_of(model, [0], 1) == pytest.approx(23 / 27, rel=1e-12)


def test_grams_do_not_cross_sequence_boundaries() -> None:
    model = fit(CORPUS, order=2)
    # context h = 2: only (2,1)×1 → c(h) = 1, T(h) = 1. Had (2,0) been counted across the
    # boundary between the sequences, P2(0|2) would be (1 + 2·1/9) / 4 = 11/36.
    #   P2(0|2) = (0 + 1·1/9) / (1 + 1) = 1/18
    #   P2(1|2) = (1 + 1·5/9) / 2 = 7/9
    assert next_probs(model, [0, 2]) == pytest.approx([1 / 18, 7 / 9, 3 / 18], rel=1e-12)
    joined = fit([CORPUS[0] + CORPUS[1]], order=2)
    assert p_of(joined, [0, 2], 0) != pytest.approx(1 / 18)
    # scoring: the second sequence's first target sees only its own style token, never the
    # previous sequence's last token, so batching changes nothing
    seqs = [np.array(s, dtype=np.uint16) for s in ([0, 2, 1, 2], [1, 0, 2], [2, 2])]
    together = model.token_nll(seqs)
    for seq, nll in zip(seqs, together, strict=True):
        np.testing.assert_array_equal(nll, model.token_nll([seq])[0])


def test_trigram_witten_bell_and_unseen_context_back_off() -> None:
    model = fit(CORPUS, order=3)
    # context h = (0,1): c(0,1,2) = 1, c(0,1,1) = 1 → c(h) = 2, T(h) = 2; lower order P2(·|1)
    #   P3(2|0,1) = (1 + 2·8/15) / 4 = (31/15) / 4 = 31/60 = 93/180
    #   P3(1|0,1) = (1 + 2·19/45) / 4 = (83/45) / 4 = 83/180
    #   P3(0|0,1) = (0 + 2·2/45) / 4 = 1/45 = 4/180                sum = 180/180
    assert next_probs(model, [0, 1]) == pytest.approx([4 / 180, 83 / 180, 93 / 180], rel=1e-12)
    # context h = (2,2) never seen: c(h) = 0 → P3(w|2,2) = P2(w|2) = 1/18, 7/9, 3/18
    assert next_probs(model, [0, 2, 2]) == pytest.approx([1 / 18, 7 / 9, 3 / 18], rel=1e-12)
    # position 1 has one token of context, so even the trigram model uses P2(1|0) = 23/27
    assert p_of(model, [0], 1) == pytest.approx(23 / 27, rel=1e-12)
    # the trigram model only looks at the last two tokens: (1,0,1) → P3(·|0,1)
    assert p_of(model, [1, 1, 0, 1], 1) == pytest.approx(83 / 180, rel=1e-12)
    # two levels of back-off, order 4: h = (2,2,2) and (2,2) unseen → P2(1|2) = 7/9
    assert p_of(fit(CORPUS, order=4), [0, 2, 2, 2], 1) == pytest.approx(7 / 9, rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_probabilities_sum_to_one(order: int) -> None:
    rng = np.random.default_rng(0)
    corpus = [[0, *rng.integers(0, 7, size=rng.integers(2, 30)).tolist()] for _ in range(20)]
    model = fit(corpus, order=order, vocab_size=7)
    contexts = [[0], [0, 1], corpus[0][:4], corpus[3][:9], [6, 6, 6, 6, 6], [0, 5, 4, 3, 2, 1]]
    for context in contexts:
        assert next_probs(model, context).sum() == pytest.approx(1.0, abs=1e-12)


def reference_prob(corpus: list[list[int]], order: int, vocab: int, context: list[int], w: int) -> Fraction:
    """Direct transcription of the recursion, with exact fractions and per-token loops."""
    grams: Counter[tuple[int, ...]] = Counter()
    for seq in corpus:
        for i in range(1, len(seq)):
            for k in range(1, min(order, i + 1) + 1):
                grams[tuple(seq[i - k + 1:i + 1])] += 1
    n = sum(c for g, c in grams.items() if len(g) == 1)
    p = Fraction(grams[(w,)] + 1, n + vocab)
    for k in range(2, min(order, len(context) + 1) + 1):
        h = tuple(context[len(context) - k + 1:])
        followers = {g[-1]: c for g, c in grams.items() if len(g) == k and g[:-1] == h}
        c_h, t_h = sum(followers.values()), len(followers)
        if c_h:
            p = (followers.get(w, 0) + t_h * p) / (c_h + t_h)
    return p


def test_matches_reference_on_random_corpus() -> None:
    rng = np.random.default_rng(1)
    corpus = [[int(rng.integers(0, 2)), *rng.integers(0, 5, size=rng.integers(0, 12)).tolist()]
              for _ in range(15)]
    model = fit(corpus, order=4, vocab_size=5)
    probe = [[0, 3, 4, 1, 2, 2, 0], corpus[2], [1]]
    for seq, nll in zip(probe, model.token_nll([np.array(s) for s in probe]), strict=True):
        assert nll.shape == (len(seq) - 1,)
        expected = [-math.log(reference_prob(corpus, 4, 5, seq[:i], seq[i])) for i in range(1, len(seq))]
        assert nll == pytest.approx(expected, rel=1e-12)


def test_five_gram_beats_unigram_on_repetitive_data() -> None:
    motif = [3, 1, 4, 1, 5, 9, 2, 6]
    corpus = [[0, *(motif * 6)], [0, *(motif * 4)]]
    held_out = [np.array([0, *(motif * 3)], dtype=np.uint16)]
    unigram = fit(corpus, order=1, vocab_size=10).token_nll(held_out)[0]
    five = fit(corpus, order=5, vocab_size=10).token_nll(held_out)[0]
    assert five.mean() < 0.5 * unigram.mean()


def test_code_overflow_and_bad_ids_raise() -> None:
    seqs = [np.array([0, 1, 2], dtype=np.uint16)]
    fit_ngram(seqs, order=3, vocab_size=65536)  # 3 × 16 = 48 bits: fine
    with pytest.raises(ValueError, match="63"):
        fit_ngram(seqs, order=4, vocab_size=65536)  # 4 × 16 = 64 bits
    with pytest.raises(ValueError, match="63"):
        fit_ngram(seqs, order=6, vocab_size=4097)  # 6 × 13 = 78 bits
    with pytest.raises(ValueError, match="order"):
        fit_ngram(seqs, order=0, vocab_size=3)
    with pytest.raises(ValueError, match="ids"):
        fit_ngram([np.array([0, 3])], order=2, vocab_size=3)
    with pytest.raises(ValueError, match="ids"):
        fit(CORPUS, order=2).token_nll([np.array([0, -1])])


def test_empty_and_short_sequences() -> None:
    model = fit([*CORPUS, [], [2]], order=3)
    assert model.n_targets == 6  # the empty and style-only sequences add no targets
    out = model.token_nll([np.array([], dtype=np.uint16), np.array([1]), np.array([0, 1])])
    assert [a.shape for a in out] == [(0,), (0,), (1,)]
    assert all(a.dtype == np.float64 for a in out)
    assert model.token_nll([]) == []


def test_chunked_scoring_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    corpus = [[0, *rng.integers(0, 6, size=rng.integers(1, 25)).tolist()] for _ in range(30)]
    model = fit(corpus, order=5, vocab_size=6)
    seqs = [np.array(s) for s in corpus]
    whole = model.token_nll(seqs)
    monkeypatch.setattr(composer.evaluate.ngram, "_EVAL_CHUNK", 7)  # chunks split sequences mid-way
    for a, b in zip(whole, model.token_nll(seqs), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not model.codes[0].flags.writeable
