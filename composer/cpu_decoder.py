"""Incremental decoding on the CPU with numpy: the model's weights as arrays, a KV cache.

Why numpy: decoding one token multiplies a few rows by every weight matrix, so its speed
is how fast the matrix–vector products stream the weights. On the CPUs we measured, the
OpenBLAS inside the numpy wheel ran those products about twice as fast as the MKL inside
the torch wheel, and a numpy operation costs a fraction of a torch operation's dispatch
(`python benchmarks/generate.py` prints both paths). The arithmetic is the model's own
(``composer/model.py``); ``tests/test_cpu_decoder.py`` holds the two to 1e-4.

Inference only: weights are read once, at construction, and never written back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from composer.model import MusicTransformer


def numpy_decoding_applies(model: MusicTransformer) -> bool:
    """True where this decoder can stand in for the model: fp32 weights on the CPU."""
    import torch

    weight = model.embed.weight
    return weight.device.type == "cpu" and weight.dtype == torch.float32


# Abramowitz & Stegun 7.1.26: |error| ≤ 1.5e-7, about fp32's resolution; numpy has no erf
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, element-wise, to fp32 accuracy."""
    magnitude = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * magnitude)
    poly = np.full_like(x, _ERF_A[0])
    for coefficient in _ERF_A[1:]:
        poly = poly * t + coefficient
    return np.copysign(1.0 - poly * t * np.exp(-magnitude * magnitude), x)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that ``torch.nn.functional.gelu`` computes."""
    return x * (0.5 + 0.5 * erf(x * np.float32(1 / math.sqrt(2))))


def layer_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Bias-free layer norm over the last axis (sums, not ``mean``: a third of the overhead)."""
    scale = 1.0 / x.shape[-1]
    centred = x - x.sum(axis=-1, keepdims=True) * scale
    variance = np.square(centred).sum(axis=-1, keepdims=True) * scale
    return centred * (weight / np.sqrt(variance + eps))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted * (1.0 / shifted.sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class _Layer:
    """One block's weights, matrices transposed to (in, out) so ``x @ w`` runs row-major."""

    norm1: np.ndarray  # (C,)
    eps1: float
    qkv: np.ndarray  # (C, 3C)
    proj: np.ndarray  # (C, C)
    norm2: np.ndarray  # (C,)
    eps2: float
    fc: np.ndarray  # (C, 4C)
    fc_out: np.ndarray  # (4C, C)


def _array(param: object, transpose: bool = False) -> np.ndarray:
    tensor = param.detach()  # type: ignore[attr-defined]
    if transpose:
        tensor = tensor.t()
    return np.ascontiguousarray(tensor.numpy(), dtype=np.float32)


class NumpyDecoder:
    """Incremental decoding: the model encodes a window, numpy adds one token per row at a time.

    ``start(ids)`` runs the model's own parallel forward pass over a window (B, T) from
    position 0 and keeps its keys and values; ``step(ids)`` appends one token per row.
    Both return the logits of the newest position, (B, V).
    """

    def __init__(self, model: MusicTransformer) -> None:
        import torch

        from composer.model import rotary_tables

        config = model.config
        self.model = model
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head
        self.max_len = config.block_size
        self.layers = [
            _Layer(
                norm1=_array(block.norm1.weight),
                eps1=block.norm1.eps,
                qkv=_array(block.attn.qkv.weight, transpose=True),
                proj=_array(block.attn.proj.weight, transpose=True),
                norm2=_array(block.norm2.weight),
                eps2=block.norm2.eps,
                fc=_array(block.mlp.fc.weight, transpose=True),
                fc_out=_array(block.mlp.proj.weight, transpose=True),
            )
            for block in model.blocks
        ]
        self.embed = _array(model.embed.weight)  # (V, C)
        self.head = _array(model.head.weight, transpose=True)  # (C, V)
        self.norm = _array(model.norm.weight)
        self.norm_eps = model.norm.eps
        positions = torch.arange(self.max_len)
        self.rotations = rotary_tables(self.head_size, positions, config.rope_base).numpy()  # (N, hs/2)
        self.keys = np.zeros((0,), np.float32)  # (L, B, nh, N, hs) once started
        self.values = np.zeros((0,), np.float32)
        self.pos = 0

    def start(self, ids: np.ndarray) -> np.ndarray:
        """Forget the cache and encode ``ids`` (B, T) from position 0; logits (B, V).

        A whole window is many rows per weight, where torch's parallel pass is the faster.
        """
        import torch

        cache = self.model.new_cache(ids.shape[0])
        threads = torch.get_num_threads()
        # numpy's BLAS threads are still spinning from the last step: two thread pools on
        # the same cores slowed this pass 2.5x (75 ms for 192 tokens against 30 ms)
        torch.set_num_threads(max(1, threads // 2))
        try:
            with torch.no_grad():
                logits = self.model(torch.from_numpy(ids), cache=cache)[0][:, -1]  # (B, V)
        finally:
            torch.set_num_threads(threads)
        self.keys, self.values = cache.keys.numpy(), cache.values.numpy()  # shared, not copied
        self.pos = cache.pos
        return logits.numpy()

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Append one token per row, ``ids`` (B,); logits (B, V)."""
        b, pos = ids.shape[0], self.pos
        if pos >= self.max_len:
            raise ValueError(f"KV cache full: {pos + 1} positions > {self.max_len}")
        nh, hs = self.n_head, self.head_size
        x = self.embed[ids]  # (B, C)
        rotation = self.rotations[pos]  # (hs/2,)
        scale = np.float32(1 / math.sqrt(hs))
        for i, layer in enumerate(self.layers):
            qkv = (layer_norm(x, layer.norm1, layer.eps1) @ layer.qkv).reshape(b, 3, nh, hs)
            pairs = np.ascontiguousarray(qkv[:, :2]).view(np.complex64)  # (B, 2, nh, hs/2)
            qk = (pairs * rotation).view(np.float32)  # (B, 2, nh, hs)
            self.keys[i, :, :, pos] = qk[:, 1]
            self.values[i, :, :, pos] = qkv[:, 2]
            keys = self.keys[i, :, :, :pos + 1]  # (B, nh, S, hs)
            scores = (keys @ (qk[:, 0, :, :, None] * scale))[..., 0]  # (B, nh, S)
            y = (softmax(scores)[:, :, None] @ self.values[i, :, :, :pos + 1])  # (B, nh, 1, hs)
            x = x + y.reshape(b, nh * hs) @ layer.proj
            x = x + gelu(layer_norm(x, layer.norm2, layer.eps2) @ layer.fc) @ layer.fc_out
        self.pos = pos + 1
        return layer_norm(x, self.norm, self.norm_eps) @ self.head  # (B, V)
