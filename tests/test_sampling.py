from __future__ import annotations

import numpy as np
import pytest
import torch

from composer.generate.sampling import SamplingSettings, UniformStream, guided_logits, sample_next


def _gen(seed: int = 0) -> UniformStream:
    return UniformStream(seed)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31 + 5, 2**40 + 7, -3])
def test_the_uniform_stream_is_torchs(seed: int) -> None:
    """A seed draws what torch's seeded generator draws, so it writes the same music as before."""
    generator, stream = torch.Generator().manual_seed(seed), UniformStream(seed)
    for n in (1, 2, 5, 17, 64):
        assert stream.random(n).tolist() == torch.rand(n, generator=generator).tolist()


def test_same_seed_same_tokens() -> None:
    logits = np.random.default_rng(1).standard_normal((4, 50)).astype(np.float32)
    settings = SamplingSettings(temperature=1.0, top_k=10, top_p=0.9)
    first, again = sample_next(logits, settings, _gen(7)), sample_next(logits, settings, _gen(7))
    assert first.tolist() == again.tolist()
    assert any(sample_next(logits, settings, _gen(s)).tolist() != first.tolist() for s in range(8))


def test_greedy_and_mask() -> None:
    logits = np.array([[0.0, 5.0, 1.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    greedy = SamplingSettings(temperature=0)
    assert sample_next(logits, greedy, _gen()).tolist() == [1, 0]
    allowed = np.array([[True, False, True], [False, True, True]])
    assert sample_next(logits, greedy, _gen(), allowed).tolist() == [2, 1]
    for seed in range(20):
        picks = sample_next(logits, SamplingSettings(), _gen(seed), allowed)
        assert allowed[np.arange(2), picks].all()


def test_top_k_and_top_p_restrict_choices() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], dtype=np.float32))
    seen_k = {int(sample_next(logits, SamplingSettings(top_k=2), _gen(s))[0]) for s in range(200)}
    assert seen_k == {0, 1}
    seen_p = {int(sample_next(logits, SamplingSettings(top_p=0.75), _gen(s))[0]) for s in range(200)}
    assert seen_p == {0, 1}  # 0.5 < 0.75 needs the second token; 0.8 ≥ 0.75 stops there


def test_guidance() -> None:
    cond, uncond = np.array([[2.0, 0.0]]), np.array([[1.0, 0.0]])
    assert guided_logits(cond, uncond, 1.0) is cond
    assert guided_logits(cond, uncond, 3.0).tolist() == [[4.0, 0.0]]


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        SamplingSettings(top_p=0)
    with pytest.raises(ValueError):
        SamplingSettings(temperature=-1)


def _expected(logits: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """The distribution top-k and top-p define, from a full sort (the textbook recipe)."""
    probs = torch.softmax(logits / settings.temperature, dim=-1)
    if settings.top_k:
        kth = probs.topk(settings.top_k).values[-1]
        probs = torch.where(probs >= kth, probs, 0.0)
        probs = probs / probs.sum()
    ranked, order = probs.sort(descending=True)
    keep = (ranked.cumsum(0) - ranked) < settings.top_p
    nucleus = torch.zeros_like(probs).scatter(0, order, ranked * keep)
    return nucleus / nucleus.sum()


@pytest.mark.parametrize("spread, settings", [
    (4.0, SamplingSettings(temperature=0.85, top_p=0.9)),  # a peaked row: the nucleus is small
    (0.3, SamplingSettings(temperature=1.0, top_p=0.9)),  # a flat row: it spans most tokens
    (2.0, SamplingSettings(temperature=1.0, top_k=30, top_p=0.8)),
    (1.0, SamplingSettings(temperature=1.2)),
])
def test_samples_follow_the_nucleus_distribution(spread: float, settings: SamplingSettings) -> None:
    logits = torch.randn(300, generator=torch.Generator().manual_seed(3)) * spread
    draws = 12_000
    rows = np.broadcast_to(logits.numpy(), (draws, 300))
    picks = torch.from_numpy(sample_next(rows, settings, _gen(5)))  # one draw per row
    observed = torch.bincount(picks, minlength=300).float() / draws
    expected = _expected(logits, settings)
    assert observed[expected == 0].sum() == 0  # nothing outside the nucleus, ever
    # within 5 standard errors, plus a little slack for the rarest tokens
    tolerance = 5 * (expected * (1 - expected) / draws).sqrt() + 1e-3
    assert ((observed - expected).abs() <= tolerance).all()
