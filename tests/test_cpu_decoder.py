from __future__ import annotations

import numpy as np
import pytest
import torch

from composer.generate.cpu_decoder import NumpyDecoder, gelu
from composer.generate.torch_decoder import numpy_decoding_applies
from composer.model.transformer import ModelConfig, MusicTransformer


def _trained_looking_model(config: ModelConfig) -> MusicTransformer:
    """Random weights at a trained model's scale (init's 0.02 leaves attention nearly flat)."""
    torch.manual_seed(0)
    model = MusicTransformer(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.15)
    return model


@pytest.mark.parametrize("config", [
    ModelConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=32),
    ModelConfig(vocab_size=300, block_size=48, n_layer=3, n_head=4, n_embd=64),
])
def test_numpy_decoder_equals_the_models_forward(config: ModelConfig) -> None:
    model = _trained_looking_model(config)
    ids = torch.randint(0, config.vocab_size, (3, config.block_size))
    with torch.no_grad():
        full = model(ids)[0].numpy()  # (B, T, V)
    decoder = NumpyDecoder.from_model(model)
    got = [decoder.start(ids[:, :17].numpy())]  # a prompt of several tokens
    for t in range(17, 30):
        got.append(decoder.step(ids[:, t].numpy()))  # one token at a time
    for t in range(30, config.block_size):
        got.append(decoder.step(ids[:, t].numpy()))
    assert decoder.pos == config.block_size
    expected = [full[:, t] for t in range(16, config.block_size)]
    for mine, theirs in zip(got, expected, strict=True):
        assert np.abs(mine - theirs).max() <= 1e-4
    with pytest.raises(ValueError, match="cache full"):
        decoder.step(ids[:, 0].numpy())
    again = decoder.start(ids[:, :5].numpy())  # a new window forgets the old one
    assert np.abs(again - full[:, 4]).max() <= 1e-4


def test_gelu_matches_torch() -> None:
    x = torch.linspace(-10, 10, 40_001)
    error = (torch.from_numpy(gelu(x.numpy())) - torch.nn.functional.gelu(x)).abs()
    assert (error <= 1e-6 * (1 + x.abs())).all()


def test_applies_only_to_fp32_weights_on_the_cpu() -> None:
    model = MusicTransformer(ModelConfig(vocab_size=20, block_size=8, n_layer=1, n_head=1, n_embd=8))
    assert numpy_decoding_applies(model)
    assert not numpy_decoding_applies(model.to(torch.bfloat16))
