"""Choosing the next token: a pure function of logits, settings and a ``UniformStream``.

The same logits, settings and stream state always give the same tokens, so a seed
fixes the music. numpy, not torch: the command line decodes without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 means greedy (always the most likely token)
    top_k: int = 0  # keep only the k most likely tokens; 0 keeps all
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be ≥ 0, not {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be ≥ 0, not {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")


class UniformStream:
    """Uniform numbers in [0, 1): those of ``torch.rand`` after ``torch.manual_seed(seed)``.

    Both are MT19937 seeded with the seed's low 32 bits, each number the low 24 bits of one
    32-bit draw divided by 2**24 (torch's fp32 ``uniform_``), so a seed writes the same
    music with numpy as it did with torch's generator; ``tests/test_sampling.py`` holds them equal.
    """

    def __init__(self, seed: int) -> None:
        self._engine = np.random.RandomState(seed % 2**32)

    def random(self, n: int) -> np.ndarray:
        """The next ``n`` numbers (n,), fp32."""
        draws = self._engine.randint(0, 2**32, size=n, dtype=np.uint32)  # raw 32-bit outputs
        return ((draws & 0xFFFFFF) * np.float32(2**-24)).astype(np.float32)


def guided_logits(conditional: np.ndarray, unconditional: np.ndarray, strength: float) -> np.ndarray:
    """Classifier-free guidance: push the logits away from the style-free prediction.

    ``strength`` 1 returns ``conditional`` unchanged; larger values exaggerate the style.
    """
    if strength == 1.0:
        return conditional
    return unconditional + strength * (conditional - unconditional)


def sample_next(logits: np.ndarray, settings: SamplingSettings, rng: UniformStream,
                allowed: np.ndarray | None = None) -> np.ndarray:
    """Next token ids (B,) from logits (B, V); ``allowed`` (B, V) masks out invalid tokens.

    Each row must allow at least one token. The stream supplies one uniform number
    per row; the rest is a few small numpy operations over the allowed tokens of each
    row (the grammar allows 900–1,650 of the default model's 4,096 at a step), several
    times cheaper than a sort and a multinomial over the whole vocabulary.
    """
    scores = np.asarray(logits, dtype=np.float32)  # (B, V)
    if settings.temperature == 0:
        if allowed is not None:
            scores = np.where(allowed, scores, np.float32(-np.inf))
        return scores.argmax(axis=-1)
    uniform = rng.random(scores.shape[0])  # (B,)
    picks = [
        _sample_row(row, None if allowed is None else allowed[i], settings, float(draw))
        for i, (row, draw) in enumerate(zip(scores, uniform.tolist(), strict=True))
    ]
    return np.array(picks, dtype=np.int64)


_NUCLEUS_PROBE = 64  # candidates ranked before sorting them all: nuclei are rarely larger


def _sample_row(scores: np.ndarray, allowed: np.ndarray | None, settings: SamplingSettings,
                uniform: float) -> int:
    """One token from one row of logits (V,), with ``uniform`` in [0, 1) as the randomness."""
    ids = np.flatnonzero(allowed) if allowed is not None else np.arange(scores.shape[0])  # (K,)
    candidates = scores[ids]
    weights = np.exp((candidates - candidates.max()) * np.float32(1 / settings.temperature))  # (K,)
    if settings.top_k and settings.top_k < weights.shape[0]:
        best = np.argpartition(weights, -settings.top_k)[-settings.top_k:]
        ids, weights = ids[best], weights[best]
    if settings.top_p < 1.0:
        ids, weights = _nucleus(ids, weights, settings.top_p)
    cumulative = np.cumsum(weights, dtype=np.float64)  # (K,)
    # the first candidate whose cumulative weight passes the target; a zero weight never does
    pick = int(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"))
    return int(ids[min(pick, int(np.flatnonzero(weights)[-1]))])


def _nucleus(ids: np.ndarray, weights: np.ndarray, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """The smallest set of best candidates whose share of ``weights`` (K,) reaches ``top_p``.

    Returns their ids and weights, best first. Ranking the best few dozen costs a fraction
    of sorting every candidate; a flat row, whose nucleus reaches past them, sorts all.
    """
    target = top_p * float(weights.sum())
    order = None
    if weights.shape[0] > _NUCLEUS_PROBE:
        probe = np.argpartition(weights, -_NUCLEUS_PROBE)[-_NUCLEUS_PROBE:]
        ranked = probe[np.argsort(-weights[probe], kind="stable")]
        if float(weights[ranked].sum()) >= target:
            order = ranked
    if order is None:
        order = np.argsort(-weights, kind="stable")
    ranked_weights = weights[order]
    before = np.cumsum(ranked_weights) - ranked_weights  # weight of the better candidates
    # keep a candidate while the better ones fall short of top_p (the first always stays)
    keep = max(1, int(np.count_nonzero(before < target)))
    return ids[order[:keep]], ranked_weights[:keep]
