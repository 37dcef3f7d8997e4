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
from dataclasses import dataclass, field
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
    # train-row weights per style temperature, made on first use (a step must not redo them)
    _weights: dict[float, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def train_row_weights(self, temperature: float) -> np.ndarray:
        """(S,) ``row_weights`` of the train split at ``temperature``, computed once."""
        if temperature not in self._weights:
            self._weights[temperature] = row_weights(self.splits["train"], temperature)
        return self._weights[temperature]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def pad_id(self) -> int:
        return int(self.meta["pad_id"])

    @property
    def style_ids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.meta["style_ids"].items()}

    @property
    def prefix_len(self) -> int:
        """Tokens before the music in every sequence: style, and key (format 2)."""
        return int(self.meta.get("prefix_len", 1))

    @property
    def any_key_id(self) -> int | None:
        value = self.meta.get("any_key_id")
        return None if value is None else int(value)


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
    key_dropout: float = 0.0  # chance of replacing the key token by Key_any
    style_temperature: float = 1.0  # style shares ∝ (style's tokens) ** this; 1 = as in the corpus


def style_shares(shard: SplitShard, temperature: float) -> dict[str, float]:
    """Each style's share of training windows: its token count to the power ``temperature``,
    normalised. 1 keeps the corpus's proportions, 0 gives every style the same share;
    in between, small styles are seen more often than their size alone would give them,
    as multilingual language models sample their languages."""
    tokens: dict[str, float] = {}
    for style, length in zip(shard.styles, shard.lengths.tolist(), strict=True):
        tokens[style] = tokens.get(style, 0.0) + float(length)
    powered = {s: t ** temperature for s, t in tokens.items() if t > 0}
    total = sum(powered.values())
    return {s: v / total for s, v in sorted(powered.items())}


def row_weights(shard: SplitShard, temperature: float) -> np.ndarray:
    """(S,) probability of drawing each sequence: its style's share, then ∝ its length."""
    shares = style_shares(shard, temperature)
    styles = np.array(shard.styles)
    weights = np.zeros(len(shard), dtype=np.float64)
    for style, share in shares.items():
        mine = styles == style
        weights[mine] = share * shard.lengths[mine] / shard.lengths[mine].sum()
    return weights / weights.sum()


def sample_batch(data: TokenData, spec: BatchSpec, step: int, rank: int = 0, world: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of the global training batch for ``step``: inputs, targets (B, T).

    Every window starts with its piece's prefix (style token, and key token where the
    shards have one), even when it is cut from the middle of a piece; windows shorter
    than ``block_size`` are padded and the padding is ignored by the loss. Pieces are
    drawn style by style (``style_shares``), then in proportion to their length.
    """
    shard = data.splits["train"]
    if len(shard) == 0:
        raise ConfigError(f"{data.root}: the train split is empty")
    rng = np.random.default_rng([spec.seed, step])
    n_prefix = data.prefix_len
    t = spec.block_size + 1 - n_prefix  # body tokens per window
    weights = data.train_row_weights(spec.style_temperature)  # (S,)
    rows = rng.choice(len(shard), size=spec.batch_size, p=weights)  # (B,)
    body_len = shard.lengths[rows] - n_prefix  # (B,)
    max_start = np.maximum(body_len - t, 0)  # (B,)
    starts = (rng.random(spec.batch_size) * (max_start + 1)).astype(np.int64)  # (B,)
    dropped = rng.random(spec.batch_size) < spec.style_dropout  # (B,)
    key_dropped = rng.random(spec.batch_size) < spec.key_dropout  # (B,)

    mine = np.arange(rank, spec.batch_size, world)
    width = np.arange(t)  # (t,)
    take = shard.offsets[rows][:, None] + n_prefix + starts[:, None] + width[None, :]  # (B, t)
    valid = (starts[:, None] + width[None, :]) < body_len[:, None]  # (B, t)
    body = shard.tokens[np.where(valid, take, 0)].astype(np.int64)  # (B, t)
    prefix = shard.tokens[shard.offsets[rows][:, None] + np.arange(n_prefix)].astype(np.int64)  # (B, P)
    prefix[:, 0] = np.where(dropped, data.style_ids.get("any", prefix[:, 0]), prefix[:, 0])
    if n_prefix > 1 and data.any_key_id is not None:
        prefix[:, 1] = np.where(key_dropped, data.any_key_id, prefix[:, 1])
    windows = np.concatenate([prefix, body], axis=1)  # (B, T + 1)
    valid = np.concatenate([np.ones((spec.batch_size, n_prefix), dtype=bool), valid], axis=1)  # (B, T + 1)
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
    the first of a sequence is prefixed by the sequence's prefix (style, key), as in
    training; the prefix itself is never scored twice.
    """
    n_prefix = data.prefix_len
    chunk = block_size + 1 - n_prefix
    shard = data.splits[split]
    seen: dict[str, int] = {}
    rank = []
    for row, style in enumerate(shard.styles):
        rank.append((seen.get(style, 0), style, row))
        seen[style] = seen.get(style, 0) + 1
    produced = 0
    for _, _, row in sorted(rank):
        sequence = shard.tokens[shard.offsets[row]: shard.offsets[row] + shard.lengths[row]]
        prefix, body = sequence[:n_prefix], sequence[n_prefix:]
        for start in range(0, max(1, len(body)), chunk):
            yield shard.styles[row], np.concatenate([prefix, body[start:start + chunk]]).astype(np.int64)
            produced += 1
            if max_windows is not None and produced >= max_windows:
                return
