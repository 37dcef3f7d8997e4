from __future__ import annotations

import pytest
import torch

from composer.model.transformer import ModelConfig, MusicTransformer, apply_rotary, rotary_tables

TINY = ModelConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=32)


def test_cached_decoding_equals_full_forward() -> None:
    torch.manual_seed(0)
    model = MusicTransformer(TINY).eval()
    ids = torch.randint(0, TINY.vocab_size, (3, 40))
    with torch.no_grad():
        full, _ = model(ids)
        cache = model.new_cache(batch_size=3)
        prefill, _ = model(ids[:, :17], cache=cache)  # a prompt of several tokens
        steps = [prefill]
        for t in range(17, 30):
            step, _ = model(ids[:, t:t + 1], cache=cache)  # one token at a time
            steps.append(step)
        chunk, _ = model(ids[:, 30:], cache=cache)  # several tokens after a prefix
        steps.append(chunk)
    cached = torch.cat(steps, dim=1)
    assert cache.pos == 40
    assert (cached - full).abs().max().item() <= 1e-4


def test_tiny_model_overfits_a_sequence() -> None:
    torch.manual_seed(0)
    model = MusicTransformer(TINY)
    ids = torch.randint(0, TINY.vocab_size, (1, 33))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    logits, _ = model.eval()(ids[:, :-1])
    assert torch.equal(logits.argmax(-1), ids[:, 1:])


def test_tied_embeddings_and_config_round_trip() -> None:
    model = MusicTransformer(TINY)
    assert model.head.weight is model.embed.weight
    assert ModelConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError):
        ModelConfig(n_embd=30, n_head=4)


def test_too_long_sequence_is_refused() -> None:
    model = MusicTransformer(TINY)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, TINY.block_size + 1, dtype=torch.long))


def test_rotary_complex_product_matches_the_real_formula() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 2, 3, 8)  # (B, T, q/k, nh, hs)
    rotations = rotary_tables(8, torch.arange(5), 10_000.0)[:, None, None]  # (T, 1, 1, hs/2)
    rotated = apply_rotary(x, rotations)
    x1, x2 = x[..., ::2], x[..., 1::2]
    cos, sin = rotations.real, rotations.imag
    expected = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    assert torch.allclose(rotated, expected, atol=1e-6)
    assert torch.allclose(rotated[:, 0], x[:, 0])  # position 0 is not rotated
    half = apply_rotary(x.bfloat16(), rotations)  # half precision takes the real formula
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), expected, atol=0.05)
