"""Token shards written in code, following the contract of ``composer tokenize``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STYLES = ("bach", "irish")


def write_token_shards(root: Path, vocab_size: int = 40, pieces: int = 12, seed: int = 0) -> Path:
    """Each piece: its style id, a repeating motif (learnable), EOS."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    pad_id, eos_id = 0, 1
    style_ids = {"bach": 2, "irish": 3, "any": 4}
    splits: dict[str, dict[str, int]] = {}
    for split, count in (("train", pieces), ("val", 3), ("test", 2)):
        ids: list[int] = []
        rows = []
        for number in range(count):
            style = STYLES[number % 2]
            motif = rng.integers(5, vocab_size, size=4) if style == "irish" else np.arange(5, 13)
            body = np.tile(motif, int(rng.integers(10, 40)))
            sequence = [style_ids[style], *body.tolist(), eos_id]
            rows.append({"id": f"{split}-{number}", "style": style, "offset": len(ids),
                         "length": len(sequence), "transpose": 0})
            ids += sequence
        np.asarray(ids, dtype=np.uint16).tofile(root / f"{split}.bin")
        (root / f"{split}.index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        splits[split] = {"pieces": count, "tokens": len(ids)}
    meta = {"vocab_size": vocab_size, "pad_id": pad_id, "bos_id": None, "eos_id": eos_id,
            "style_ids": style_ids, "tokenizer_sha256": "0" * 64, "splits": splits,
            "augmentation": {"transpositions": [0], "mode": "precomputed"}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root
