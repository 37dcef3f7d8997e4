"""Incremental decoding on the CPU with numpy: the model's weights as arrays, a KV cache.

Why numpy: decoding one token multiplies a few rows by every weight matrix, so its speed
is how fast the matrix–vector products stream the weights. On the CPUs we measured, the
OpenBLAS inside the numpy wheel ran those products about twice as fast as the MKL inside
the torch wheel, and a numpy operation costs a fraction of a torch operation's dispatch
(`python benchmarks/generate.py` prints both paths). And the command line need not import
torch at all: the weights come straight from the bundle's safetensors file as arrays.
The arithmetic is the model's own (``composer/model/transformer.py``);
``tests/test_cpu_decoder.py`` holds the two to 1e-4.

Inference only: weights are read once, at construction, and never written back.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.model.config import LAYER_NORM_EPS, ModelConfig

if TYPE_CHECKING:
    from composer.model.transformer import MusicTransformer


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

    qkv: np.ndarray  # (C, 3C)
    proj: np.ndarray  # (C, C)
    fc: np.ndarray  # (C, 4C)
    fc_out: np.ndarray  # (4C, C)


def _matrix(weight: np.ndarray, gain: np.ndarray | None = None) -> np.ndarray:
    """A linear layer's weight (out, in) as an (in, out) fp32 array, rows scaled by ``gain``."""
    matrix = np.asarray(weight, dtype=np.float32).T
    if gain is not None:
        matrix = matrix * np.asarray(gain, dtype=np.float32)[:, None]
    return np.ascontiguousarray(matrix, dtype=np.float32)


def rotations(head_size: int, length: int, base: float) -> np.ndarray:
    """Unit complex rotations (N, hs/2) for positions 0..N-1, in fp32 as the model makes them."""
    exponents = np.arange(0, head_size, 2, dtype=np.float32) / np.float32(head_size)
    inv_freq = (np.float32(1) / np.power(np.float32(base), exponents)).astype(np.float32)  # (hs/2,)
    angles = np.arange(length, dtype=np.float32)[:, None] * inv_freq[None, :]  # (N, hs/2)
    return (np.cos(angles) + 1j * np.sin(angles)).astype(np.complex64)


def weights_are_fp32(weights: Mapping[str, np.ndarray]) -> bool:
    """True where every array is fp32: the numpy decoder's arithmetic (others go to torch)."""
    return all(np.asarray(w).dtype == np.float32 for w in weights.values())


class NumpyDecoder:
    """Incremental decoding: encode a window, then add one token per row at a time.

    ``start(ids)`` encodes a window (B, T) from position 0 and keeps its keys and values;
    ``step(ids)`` appends one token per row. Both return the logits of the newest
    position, (B, V). The weights are prepared once, so one decoder serves call after call.
    """

    def __init__(self, config: ModelConfig, weights: Mapping[str, np.ndarray]) -> None:
        """``weights``: the model's state dict as arrays (``head.weight`` may be left out:
        the head is tied to the embedding)."""
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController()
        self.n_head = config.n_head
        self.head_size = config.head_size
        self.max_len = config.block_size
        self.eps = np.float32(LAYER_NORM_EPS)
        query_scale = np.ones((3 * config.n_embd, 1), dtype=np.float32)
        query_scale[:config.n_embd] = 1 / math.sqrt(self.head_size)
        self.layers = [
            _Layer(
                qkv=_matrix(weights[f"blocks.{i}.attn.qkv.weight"] * query_scale,
                            weights[f"blocks.{i}.norm1.weight"]),
                proj=_matrix(weights[f"blocks.{i}.attn.proj.weight"]),
                fc=_matrix(weights[f"blocks.{i}.mlp.fc.weight"], weights[f"blocks.{i}.norm2.weight"]),
                fc_out=_matrix(weights[f"blocks.{i}.mlp.proj.weight"]),
            )
            for i in range(config.n_layer)
        ]
        self.embed = np.ascontiguousarray(weights["embed.weight"], dtype=np.float32)  # (V, C)
        self.head = _matrix(weights.get("head.weight", self.embed), weights["norm.weight"])  # (C, V)
        self.rotations = rotations(self.head_size, self.max_len, config.rope_base)  # (N, hs/2)
        self.keys = np.zeros((0,), np.float32)  # (L, B, nh, N, hs) once started
        self.values = np.zeros((0,), np.float32)
        self.pos = 0

    @classmethod
    def from_model(cls, model: MusicTransformer) -> NumpyDecoder:
        """The decoder for a loaded torch model's weights."""
        weights = {name: tensor.detach().float().cpu().numpy() for name, tensor in model.state_dict().items()}
        return cls(model.config, weights)

    @property
    def block_size(self) -> int:
        return self.max_len

    def _attention_inputs(self, x: np.ndarray, layer: _Layer, rotation: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rotated queries and keys and the values of x (B, T, C), each (B, T, nh, hs)."""
        b, t = x.shape[:2]
        qkv = (normalize(x, self.eps) @ layer.qkv).reshape(b, t, 3, self.n_head, self.head_size)
        pairs = np.ascontiguousarray(qkv[:, :, :2]).view(np.complex64)  # (B, T, 2, nh, hs/2)
        qk = (pairs * rotation[None, :, None, None, :]).view(np.float32)  # (B, T, 2, nh, hs)
        return qk[:, :, 0], qk[:, :, 1], qkv[:, :, 2]

    def _feed_forward(self, x: np.ndarray, layer: _Layer) -> None:
        x += gelu(normalize(x, self.eps) @ layer.fc) @ layer.fc_out

    def session(self) -> AbstractContextManager[object]:
        """Decoding runs inside this: numpy's BLAS on one thread.

        OpenBLAS's worker threads spin for a while after each product they share. Beside
        another busy process on a 2-core machine, they took the decoder's own core: 16 bars
        of Haydn took 5-11 s on two threads against 1.2 s on one. On an idle machine two
        threads were 6-15 % faster; a decoder that degrades gracefully is worth more.
        """
        return self._blas.limit(limits=1, user_api="blas")

    def start(self, ids: np.ndarray) -> np.ndarray:
        """Forget the cache and encode ``ids`` (B, T) from position 0; logits (B, V)."""
        b, t = ids.shape
        if t > self.max_len:
            raise ValueError(f"window of {t} tokens > context {self.max_len}")
        nh, hs = self.n_head, self.head_size
        shape = (len(self.layers), b, nh, self.max_len, hs)
        self.keys, self.values = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        future = np.triu(np.full((t, t), -np.inf, dtype=np.float32), k=1)  # (T, T)
        x = self.embed[ids]  # (B, T, C)
        for i, layer in enumerate(self.layers):
            q, k, v = self._attention_inputs(x, layer, self.rotations[:t])  # (B, T, nh, hs) each
            self.keys[i, :, :, :t] = k.transpose(0, 2, 1, 3)
            self.values[i, :, :, :t] = v.transpose(0, 2, 1, 3)
            scores = q.transpose(0, 2, 1, 3) @ self.keys[i, :, :, :t].transpose(0, 1, 3, 2)  # (B, nh, T, T)
            scores += future
            y = softmax(scores) @ self.values[i, :, :, :t]  # (B, nh, T, hs)
            x = x + y.transpose(0, 2, 1, 3).reshape(b, t, nh * hs) @ layer.proj
            self._feed_forward(x, layer)
        self.pos = t
        return normalize(x[:, -1], self.eps) @ self.head  # (B, V)

    def reorder(self, rows: np.ndarray) -> None:
        """Row ``i`` of the cache becomes a copy of row ``rows[i]`` (B,): resampling particles."""
        self.keys = self.keys[:, rows]
        self.values = self.values[:, rows]

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Append one token per row, ``ids`` (B,); logits (B, V)."""
        b, pos = ids.shape[0], self.pos
        if pos >= self.max_len:
            raise ValueError(f"KV cache full: {pos + 1} positions > {self.max_len}")
        nh, hs = self.n_head, self.head_size
        x = self.embed[ids][:, None]  # (B, 1, C)
        for i, layer in enumerate(self.layers):
            q, k, v = self._attention_inputs(x, layer, self.rotations[pos:pos + 1])  # (B, 1, nh, hs)
            self.keys[i, :, :, pos] = k[:, 0]
            self.values[i, :, :, pos] = v[:, 0]
            scores = (self.keys[i, :, :, :pos + 1] @ q[:, 0, :, :, None])[..., 0]  # (B, nh, S)
            y = softmax(scores)[:, :, None] @ self.values[i, :, :, :pos + 1]  # (B, nh, 1, hs)
            x = x + y.reshape(b, 1, nh * hs) @ layer.proj
            self._feed_forward(x, layer)
        self.pos = pos + 1
        return normalize(x[:, 0], self.eps) @ self.head  # (B, V)
