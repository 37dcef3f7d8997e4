"""Choosing the next token: a pure function of logits, settings and a ``torch.Generator``.

The same logits, settings and generator state always give the same tokens, so a seed
fixes the music.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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


def guided_logits(conditional: torch.Tensor, unconditional: torch.Tensor, strength: float) -> torch.Tensor:
    """Classifier-free guidance: push the logits away from the style-free prediction.

    ``strength`` 1 returns ``conditional`` unchanged; larger values exaggerate the style.
    """
    if strength == 1.0:
        return conditional
    return unconditional + strength * (conditional - unconditional)


def sample_next(logits: torch.Tensor, settings: SamplingSettings, generator: torch.Generator,
                allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Next token ids (B,) from logits (B, V); ``allowed`` (B, V) masks out invalid tokens.

    Each row must allow at least one token.
    """
    scores = logits.float()
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    if settings.temperature == 0:
        return scores.argmax(dim=-1)
    scores = scores / settings.temperature
    if settings.top_k and settings.top_k < scores.shape[-1]:
        kth = torch.topk(scores, settings.top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if settings.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)  # (B, V)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)  # (B, V)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop_sorted = (cumulative - torch.softmax(sorted_scores, dim=-1)) >= settings.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    probs = torch.softmax(scores, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
