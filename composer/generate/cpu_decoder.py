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

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from composer.model.transformer import MusicTransformer


def numpy_decoding_applies(model: MusicTransformer) -> bool:
    """True where this decoder can stand in for the model: fp32 weights on the CPU."""
    import torch

    weight = model.embed.weight
    return weight.device.type == "cpu" and weight.dtype == torch.float32


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t·poly(t)·exp(-z²), t = 1 / (1 + p·z), z ≥ 0,
# within 1.5e-7, about fp32's resolution; numpy has no erf. Constants are fp32 scalars made
# once: at decoding sizes, converting them on every call costs more than the arithmetic.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                                      1.061405429))  # a1 … a5
_SQRT_HALF = np.float32(1 / math.sqrt(2))
_HALF = np.float32(0.5)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of ``torch.nn.functional.gelu``, element-wise, to fp32 accuracy.

    With q = 1 - erf(|x|/√2): GELU is x - x·q/2 for x ≥ 0 and x·q/2 below. In-place
    steps, because at decoding sizes each numpy call costs more than its arithmetic.
    """
    z = np.abs(x)
    z *= _SQRT_HALF
    t = z * _ERF_P
    t += 1
    np.reciprocal(t, out=t)
    poly = t * _ERF_A[4]
    for coefficient in _ERF_A[3::-1]:
        poly += coefficient
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # q
    poly *= x
    poly *= _HALF  # x·q/2
    return np.where(x >= 0, x - poly, poly)


@functools.cache
def _inverse(width: int) -> np.float32:
    return np.float32(1 / width)


def normalize(x: np.ndarray, eps: np.float32) -> np.ndarray:
    """Layer norm over the last axis without its gain (folded into the next weights)."""
    inverse_width = _inverse(x.shape[-1])
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) * inverse_width
    variance = np.einsum("...i,...i->...", centred, centred)[..., None]
    centred *= 1 / np.sqrt(variance * inverse_width + eps)
    return centred


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    shifted *= 1 / shifted.sum(axis=-1, keepdims=True)
    return shifted


@dataclass(frozen=True)
class _Layer:
    """One block's weights as (in, out) matrices, so ``x @ w`` runs row-major.

    Each layer norm's gain is folded into the matrix after it (norm(x)·g @ W =
    norm(x) @ diag(g)·W), and 1/√hs into the query columns: fewer calls per token.
    """

    eps1: np.float32
    qkv: np.ndarray  # (C, 3C)
    proj: np.ndarray  # (C, C)
    eps2: np.float32
    fc: np.ndarray  # (C, 4C)
    fc_out: np.ndarray  # (4C, C)


def _matrix(weight: object, gain: object | None = None) -> np.ndarray:
    """A linear layer's weight (out, in) as an (in, out) fp32 array, rows scaled by ``gain``."""
    matrix = weight.detach().t()  # type: ignore[attr-defined]
    if gain is not None:
        matrix = matrix * gain.detach()[:, None]  # type: ignore[attr-defined]
    return np.ascontiguousarray(matrix.numpy(), dtype=np.float32)


class NumpyDecoder:
    """Incremental decoding: the model encodes a window, numpy adds one token per row at a time.

    ``start(ids)`` runs the model's own parallel forward pass over a window (B, T) from
    position 0 and keeps its keys and values; ``step(ids)`` appends one token per row.
    Both return the logits of the newest position, (B, V). The weights are prepared once
    (23 ms for the default model), so one decoder serves call after call.
    """

    def __init__(self, model: MusicTransformer) -> None:
        import torch

        config = model.config
        self.model = model
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head
        self.max_len = config.block_size
        query_scale = torch.ones(3 * config.n_embd)
        query_scale[:config.n_embd] = 1 / math.sqrt(self.head_size)
        with torch.no_grad():
            self.layers = [
                _Layer(
                    eps1=np.float32(block.norm1.eps),
                    qkv=_matrix(block.attn.qkv.weight * query_scale[:, None], block.norm1.weight),
                    proj=_matrix(block.attn.proj.weight),
                    eps2=np.float32(block.norm2.eps),
                    fc=_matrix(block.mlp.fc.weight, block.norm2.weight),
                    fc_out=_matrix(block.mlp.proj.weight),
                )
                for block in model.blocks
            ]
            self.embed = model.embed.weight.detach().numpy().astype(np.float32)  # (V, C)
            self.head = _matrix(model.head.weight, model.norm.weight)  # (C, V)
        self.norm_eps = np.float32(model.norm.eps)
        self.rotations = model.rotations(self.max_len, torch.device("cpu"))[:, 0, 0].numpy()  # (N, hs/2)
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
        for i, layer in enumerate(self.layers):
            qkv = (normalize(x, layer.eps1) @ layer.qkv).reshape(b, 3, nh, hs)  # queries pre-scaled
            pairs = np.ascontiguousarray(qkv[:, :2]).view(np.complex64)  # (B, 2, nh, hs/2)
            qk = (pairs * rotation).view(np.float32)  # (B, 2, nh, hs)
            self.keys[i, :, :, pos] = qk[:, 1]
            self.values[i, :, :, pos] = qkv[:, 2]
            scores = (self.keys[i, :, :, :pos + 1] @ qk[:, 0, :, :, None])[..., 0]  # (B, nh, S)
            y = softmax(scores)[:, :, None] @ self.values[i, :, :, :pos + 1]  # (B, nh, 1, hs)
            x = x + y.reshape(b, nh * hs) @ layer.proj
            x += gelu(normalize(x, layer.eps2) @ layer.fc) @ layer.fc_out
        self.pos = pos + 1
        return normalize(x, self.norm_eps) @ self.head  # (B, V)
