"""The model's shape as a dataclass, without torch: the numpy decoder reads it too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

LAYER_NORM_EPS = 1e-5  # torch's LayerNorm default, which the model keeps


@dataclass
class ModelConfig:
    vocab_size: int = 1024  # tokenizer vocabulary size, special tokens included
    block_size: int = 512  # longest context the model is trained on, in tokens
    n_layer: int = 6  # transformer blocks
    n_head: int = 8  # attention heads per block
    n_embd: int = 256  # width of the residual stream
    dropout: float = 0.0  # dropout on attention weights and residual branches (training only)
    rope_base: float = 10_000.0  # rotary embedding base frequency

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("the head size n_embd / n_head must be even for rotary positions")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
