"""Per-token negative log-likelihood of a model on whole token sequences.

Sequences longer than the model's context are scored with overlapping windows: each
window starts with the sequence's prefix (style token, and key token in format 2, as in
training) followed by the most recent ``block_size - prefix`` tokens, and only the tokens
not scored by an earlier window count, so every token after the first is scored exactly
once and with as much context as the model can hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from composer.model.transformer import MusicTransformer


def _windows(length: int, block_size: int, stride: int, prefix: int = 1) -> list[tuple[int, int, int]]:
    """(context start, first scored position, end) triples covering positions 1..length-1.

    A window holds the ``prefix`` tokens plus positions [start, end); it scores [first, end).
    """
    body = block_size - prefix  # room after the prefix
    windows, first = [], 1
    while first < length:
        end = min(length, first + stride) if first > 1 else min(length, prefix + body)
        start = max(prefix, end - body)
        windows.append((start, first, end))
        first = end
    return windows


@torch.no_grad()
def sequence_nll(model: MusicTransformer, sequences: Sequence[np.ndarray], stride: int | None = None,
                 progress: Callable[[int, int], None] | None = None, prefix: int = 1) -> list[np.ndarray]:
    """Natural-log NLL of positions 1..len-1 of each sequence: one (len-1,) array each.

    ``prefix`` is the tokenizer's ``prefix_len``: how many leading tokens every window repeats.
    """
    block = model.config.block_size
    stride = stride or block // 2
    device = next(model.parameters()).device
    model.eval()
    results = []
    for done, sequence in enumerate(sequences, 1):
        ids = torch.as_tensor(np.asarray(sequence, dtype=np.int64), device=device)  # (L,)
        scores = np.zeros(max(0, len(ids) - 1))
        for start, first, end in _windows(len(ids), block, stride, prefix):
            window = torch.cat([ids[:prefix], ids[start:end]])[None, :]  # (1, W)
            logits, _ = model(window[:, :-1])  # (1, W-1, V)
            logp = torch.log_softmax(logits[0].float(), dim=-1)
            targets = window[0, 1:]  # (W-1,) ids at positions start..end-1
            nll = -logp.gather(1, targets[:, None])[:, 0]  # (W-1,)
            # window index prefix+j holds sequence position start+j; keep positions first..end-1
            scores[first - 1:end - 1] = nll[prefix + first - start - 1:].cpu().numpy()
        results.append(scores)
        if progress:
            progress(done, len(sequences))
    return results


__all__ = ["sequence_nll"]
