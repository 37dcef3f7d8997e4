"""A small GPT-style decoder for token streams, in plain PyTorch (after nanoGPT).

Pre-norm blocks, causal ``scaled_dot_product_attention``, rotary positions, tied
input/output embeddings, and an explicit ``KVCache`` object for incremental decoding.
No file I/O and no tokenizer here: ids in, logits out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from composer.model.config import LAYER_NORM_EPS, ModelConfig

__all__ = ["KVCache", "ModelConfig", "MusicTransformer", "apply_rotary", "rotary_tables"]


class KVCache:
    """Keys and values of every layer for the tokens seen so far, for incremental decoding.

    Preallocated to ``max_len`` positions; ``pos`` is the number of positions filled.
    """

    def __init__(self, config: ModelConfig, batch_size: int, max_len: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        head_size = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, head_size)  # (L, B, nh, T, hs)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.pos = 0

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) at the current position; return all keys/values so far."""
        t = k.shape[2]
        end = self.pos + t
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions > {self.max_len}")
        self.keys[layer, :, :, self.pos:end] = k
        self.values[layer, :, :, self.pos:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, t: int) -> None:
        self.pos += t


def rotary_tables(head_size: int, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Unit complex rotations cos + i·sin, (T, hs/2), for the given absolute positions (T,)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_size, 2, device=positions.device).float() / head_size))
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, hs/2)
    return torch.complex(angles.cos(), angles.sin())


def apply_rotary(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels (2i, 2i+1) of x (..., hs); ``rotations`` broadcast to (..., hs/2).

    In fp32 a pair is one complex number and the rotation one complex product: one kernel
    forward and one backward, where the real formula takes seven.
    """
    if x.dtype in (torch.float32, torch.float64):
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # (..., hs/2)
        return torch.view_as_real(pairs * rotations).flatten(-2)  # (..., hs)
    x1, x2 = x[..., ::2], x[..., 1::2]  # (..., hs/2) each; half precision has no complex kernels
    cos, sin = rotations.real.to(x.dtype), rotations.imag.to(x.dtype)
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., hs/2, 2)
    return rotated.flatten(-2)  # (..., hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, rotations: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, t, c = x.shape  # (B, T, C)
        qkv = self.qkv(x).view(b, t, 3, self.n_head, self.head_size)  # (B, T, 3, nh, hs)
        # queries and keys rotate together: one set of element-wise kernels, not two
        qk = apply_rotary(qkv[:, :, :2], rotations)  # (B, T, 2, nh, hs); rotations (T, 1, 1, hs/2)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # 2 × (B, nh, T, hs)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, nh, T, hs)
        past = 0
        if cache is not None:
            past = cache.pos
            k, v = cache.append(layer, k, v)  # (B, nh, past + T, hs)
        dropout = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:  # several new tokens after a prefix: each sees the prefix and its predecessors
            allowed = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # (B, T, C)
        return F.dropout(self.proj(y), dropout, self.training)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.proj(F.gelu(self.fc(x))), self.dropout, self.training)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=False)
        self.attn = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rotations: torch.Tensor,
                cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rotations, cache, layer)
        return x + self.mlp(self.norm2(x))


class MusicTransformer(nn.Module):
    """Decoder-only transformer: ids (B, T) → next-token logits (B, T, vocab)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=False)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied embeddings
        self._rotary_table: torch.Tensor | None = None
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def rotations(self, length: int, device: torch.device) -> torch.Tensor:
        """Rotations (N, 1, 1, hs/2) for positions 0..N-1, N ≥ length; built once, not weights."""
        table = self._rotary_table
        if table is None or table.shape[0] < length or table.device != device:
            size = max(length, self.config.block_size)
            table = rotary_tables(self.config.n_embd // self.config.n_head,
                                  torch.arange(size, device=device), self.config.rope_base)
            table = self._rotary_table = table[:, None, None]
        return table

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, ignore_index: int = -100
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) for ids (B, T), and the mean cross-entropy if targets are given.

        With a cache, ``idx`` holds only the new tokens; they are placed after ``cache.pos``.
        """
        _b, t = idx.shape  # (B, T)
        start = cache.pos if cache is not None else 0
        if cache is None and t > self.config.block_size:
            raise ValueError(f"sequence of {t} tokens exceeds block_size {self.config.block_size}")
        rotations = self.rotations(start + t, idx.device)[start:start + t]  # (T, 1, 1, hs/2)
        x = self.drop(self.embed(idx))  # (B, T, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, rotations, cache, layer)
        if cache is not None:
            cache.advance(t)
        logits = self.head(self.norm(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=ignore_index)
        return logits, loss

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        param = self.embed.weight
        return KVCache(self.config, batch_size, max_len or self.config.block_size,
                       device=param.device, dtype=param.dtype)
