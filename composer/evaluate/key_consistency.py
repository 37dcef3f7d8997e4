"""Does a continuation stay in its prompt's key?

Keys come from ``music_facts.key_index`` (music21's key profiles). Two keys that share a
key signature (C major and A minor) count as the same: a continuation that moves to the
relative minor has not lost the key, and the profiles often cannot tell the two apart
from a few bars anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.music.facts import MAJOR_STEPS, key_index, key_name, pitch_class_durations
from composer.music.keys import signature_fifths

if TYPE_CHECKING:
    import symusic

@dataclass(frozen=True)
class KeyComparison:
    prompt_key: str | None
    continuation_key: str | None
    same_signature: bool  # the same key, or the same key signature
    in_scale: float  # share of the continuation's sounding time on the prompt key's scale notes


def compare_keys(prompt: symusic.Score, continuation: symusic.Score) -> KeyComparison:
    """Key of the prompt vs key of the continuation (only the new bars)."""
    before, after = key_index(prompt), key_index(continuation)
    same = (before is not None and after is not None
            and signature_fifths(*before) == signature_fifths(*after))
    in_scale = float("nan")
    weights = pitch_class_durations(continuation)
    if before is not None and weights.sum() > 0:
        major_tonic = before[1] if before[0] == 0 else (before[1] + 3) % 12
        scale = [(major_tonic + step) % 12 for step in MAJOR_STEPS]
        if before[0] == 1:
            scale.append((before[1] + 11) % 12)  # the minor's leading note
        in_scale = float(weights[scale].sum() / weights.sum())
    return KeyComparison(key_name(*before) if before else None, key_name(*after) if after else None,
                         same, in_scale)


def key_keeping(comparisons: list[KeyComparison]) -> dict[str, float]:
    """Share of continuations in the prompt's key signature, and mean share of scale notes."""
    if not comparisons:
        return {"same_key_rate": float("nan"), "in_scale": float("nan"), "continuations": 0}
    scale = [c.in_scale for c in comparisons if not np.isnan(c.in_scale)]
    return {"same_key_rate": float(np.mean([c.same_signature for c in comparisons])),
            "in_scale": float(np.mean(scale)) if scale else float("nan"),
            "continuations": len(comparisons)}


__all__ = ["KeyComparison", "compare_keys", "key_keeping"]
