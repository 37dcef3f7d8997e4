"""Token shards → training batches.

Reads the shards written by ``composer tokenize`` (see ``composer.tokens.shards``):
``meta.json``, ``<split>.bin`` (uint16, memory-mapped) and ``<split>.index.jsonl``.
Batches are a pure function of (seed, step), so a resumed run sees exactly the
batches an uninterrupted run would, and every rank of a DDP run can cut its share of
the same global batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from composer.errors import ConfigError

IGNORE_INDEX = -100  # target value that the loss skips (padding)

@dataclass(frozen=True)
class SplitShard:
    tokens: np.ndarray  # (N,) uint16, memory-mapped
    offsets: np.ndarray  # (S,) int64, start of each sequence in ``tokens``
    lengths: np.ndarray  # (S,) int64
    styles: list[str]  # style of each sequence
    ids: list[str]  # piece id of each sequence

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True)
class TokenData:
    root: Path
    meta: dict[str, Any]
    splits: dict[str, SplitShard]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def pad_id(self) -> int:
        return int(self.meta["pad_id"])

    @property
    def style_ids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.meta["style_ids"].items()}


def load_token_data(root: Path, splits: tuple[str, ...] = ("train", "val")) -> TokenData:
    """Open the shards of ``root``; a ``ConfigError`` says what is missing."""
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise ConfigError(f"{root}: no meta.json; run 'composer tokenize CORPUS --tokenizer DIR -o {root}'")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    loaded = {}
    for split in splits:
        bin_path, index_path = root / f"{split}.bin", root / f"{split}.index.jsonl"
        if not bin_path.is_file() or not index_path.is_file():
            raise ConfigError(f"{root}: the {split} split is missing ({bin_path.name}, {index_path.name})")
        rows = [json.loads(line) for line in index_path.read_text(encoding="utf-8").splitlines() if line]
        size = bin_path.stat().st_size // 2
        tokens = (np.memmap(bin_path, dtype=np.uint16, mode="r", shape=(size,)) if size
                  else np.zeros(0, dtype=np.uint16))
        offsets = np.array([r["offset"] for r in rows], dtype=np.int64)
        lengths = np.array([r["length"] for r in rows], dtype=np.int64)
        if len(rows) and int((offsets + lengths).max()) > size:
            raise ConfigError(f"{bin_path}: shorter than its index says; run 'composer tokenize' again")
        loaded[split] = SplitShard(tokens, offsets, lengths, [r["style"] for r in rows],
                                   [r["id"] for r in rows])
    return TokenData(root, meta, loaded)


@dataclass(frozen=True)
class BatchSpec:
    batch_size: int  # sequences per optimizer step, over all ranks
    block_size: int  # tokens per training window
    seed: int  # data seed; batches depend only on (seed, step)
    style_dropout: float = 0.0  # chance of replacing the style token by Style_any


def sample_batch(data: TokenData, spec: BatchSpec, step: int, rank: int = 0, world: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of the global training batch for ``step``: inputs, targets (B, T).

    Every window starts with its piece's style token, even when it is cut from the
    middle of a piece; windows shorter than ``block_size`` are padded and the padding
    is ignored by the loss.
    """
    shard = data.splits["train"]
    if len(shard) == 0:
        raise ConfigError(f"{data.root}: the train split is empty")
    rng = np.random.default_rng([spec.seed, step])
    t = spec.block_size
    weights = shard.lengths / shard.lengths.sum()
    rows = rng.choice(len(shard), size=spec.batch_size, p=weights)  # (B,)
    # body of a sequence = everything after its leading style token
    body_len = shard.lengths[rows] - 1  # (B,)
    max_start = np.maximum(body_len - t, 0)  # (B,)
    starts = (rng.random(spec.batch_size) * (max_start + 1)).astype(np.int64)  # (B,)
    dropped = rng.random(spec.batch_size) < spec.style_dropout  # (B,)

    mine = np.arange(rank, spec.batch_size, world)
    width = np.arange(t)  # (T,)
    take = shard.offsets[rows][:, None] + 1 + starts[:, None] + width[None, :]  # (B, T)
    valid = (starts[:, None] + width[None, :]) < body_len[:, None]  # (B, T)
    body = shard.tokens[np.where(valid, take, 0)].astype(np.int64)  # (B, T)
    style = shard.tokens[shard.offsets[rows]].astype(np.int64)  # (B,)
    style = np.where(dropped, data.style_ids.get("any", style), style)
    windows = np.concatenate([style[:, None], body], axis=1)  # (B, T + 1)
    valid = np.concatenate([np.ones((spec.batch_size, 1), dtype=bool), valid], axis=1)  # (B, T + 1)
    windows = np.where(valid, windows, data.pad_id)
    windows, valid = windows[mine], valid[mine]
    inputs = torch.from_numpy(windows[:, :-1].copy())  # (b, T)
    targets = torch.from_numpy(np.where(valid[:, 1:], windows[:, 1:], IGNORE_INDEX))  # (b, T)
    return inputs, targets


def eval_windows(data: TokenData, split: str, block_size: int, max_windows: int | None = None
                 ) -> Iterator[tuple[str, np.ndarray]]:
    """(style, window of ≤ block_size + 1 ids) covering each sequence once.

    Sequences are visited style by style in turn (the first piece of every style, then
    the second…), so a ``max_windows`` limit still samples every style. Each window after
    the first of a sequence is prefixed by the sequence's style token, as in training;
    the style position itself is never scored twice.
    """
    shard = data.splits[split]
    seen: dict[str, int] = {}
    rank = []
    for row, style in enumerate(shard.styles):
        rank.append((seen.get(style, 0), style, row))
        seen[style] = seen.get(style, 0) + 1
    produced = 0
    for _, _, row in sorted(rank):
        sequence = shard.tokens[shard.offsets[row]: shard.offsets[row] + shard.lengths[row]]
        style, body = sequence[:1], sequence[1:]
        for start in range(0, max(1, len(body)), block_size):
            yield shard.styles[row], np.concatenate([style, body[start:start + block_size]]).astype(np.int64)
            produced += 1
            if max_windows is not None and produced >= max_windows:
                return
