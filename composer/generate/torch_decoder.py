"""The model's own cached forward pass, for weights the numpy decoder does not take
(a GPU, half precision), and ``new_decoder``, which picks between the two for a torch model."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np
import torch

from composer.generate.cpu_decoder import NumpyDecoder

if TYPE_CHECKING:
    from composer.model.transformer import KVCache, MusicTransformer


class TorchDecoder:
    """Same calls as ``NumpyDecoder``; logits come back as fp32 numpy arrays (B, V)."""

    def __init__(self, model: MusicTransformer) -> None:
        self.model = model
        self.cache: KVCache | None = None

    @property
    def pos(self) -> int:
        return 0 if self.cache is None else self.cache.pos

    @property
    def block_size(self) -> int:
        return self.model.config.block_size

    def session(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()

    @torch.no_grad()
    def start(self, ids: np.ndarray) -> np.ndarray:
        tokens = torch.from_numpy(ids).to(self.model.embed.weight.device)  # (B, T)
        self.cache = self.model.new_cache(ids.shape[0])
        return self.model(tokens, cache=self.cache)[0][:, -1].float().cpu().numpy()  # (B, V)

    def reorder(self, rows: np.ndarray) -> None:
        """Row ``i`` of the cache becomes a copy of row ``rows[i]`` (B,): resampling particles."""
        if self.cache is not None:
            index = torch.as_tensor(rows, device=self.cache.keys.device)
            self.cache.keys = self.cache.keys[:, index]
            self.cache.values = self.cache.values[:, index]

    @torch.no_grad()
    def step(self, ids: np.ndarray) -> np.ndarray:
        tokens = torch.from_numpy(ids).to(self.model.embed.weight.device)[:, None]  # (B, 1)
        return self.model(tokens, cache=self.cache)[0][:, -1].float().cpu().numpy()  # (B, V)


def numpy_decoding_applies(model: MusicTransformer) -> bool:
    """True where the numpy decoder can stand in for the model: fp32 weights on the CPU."""
    weight = model.embed.weight
    return weight.device.type == "cpu" and weight.dtype == torch.float32


def new_decoder(model: MusicTransformer) -> NumpyDecoder | TorchDecoder:
    """The fastest decoder for ``model``: numpy for fp32 weights on the CPU, else torch."""
    return NumpyDecoder.from_model(model) if numpy_decoding_applies(model) else TorchDecoder(model)
