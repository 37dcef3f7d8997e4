"""Generated samples for the evaluation: one seeded batch per style, and their validity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.evaluate.config import EvaluateConfig, Progress, chosen_styles

if TYPE_CHECKING:
    import symusic

    from composer.api import Composer

@dataclass
class Sample:
    style: str
    number: int
    score: symusic.Score
    valid: bool  # the tokens walk the grammar and decode
    exact_bars: bool  # exactly the requested number of bars
    bars: tuple[int, int] = (0, 0)  # bars opened by the tokens, bars of the written score
    features: np.ndarray = field(default_factory=lambda: np.zeros(0))


def generate_samples(config: EvaluateConfig, composer: Composer,
                     progress: Progress | None = None) -> list[Sample]:
    """``config.samples`` pieces per style, one batch per style, fixed seeds."""
    from composer.music.facts import count_bars

    grammar = composer.tokenizer.grammar
    samples = []
    styles = chosen_styles(config, composer)
    if progress:
        progress("generate", 0, len(styles))
    for done, style in enumerate(styles, 1):
        pieces = composer.generate(style, bars=config.bars, seed=config.seed, num=config.samples)
        for number, piece in enumerate(pieces if isinstance(pieces, list) else [pieces], 1):
            # generate() has already decoded the ids into piece.score; check the tokens' grammar
            try:
                grammar.walk(piece.ids)
                valid = len(piece.score.tracks) > 0
            except ValueError:
                valid = False
            bars = (grammar.bars_done(piece.ids), count_bars(piece.score))
            exact = bars == (config.bars, config.bars)
            samples.append(Sample(style, number, piece.score, valid, exact, bars))
        if progress:
            progress("generate", done, len(styles))
    return samples


def validity(samples: list[Sample]) -> dict[str, Any]:
    count = len(samples)
    failed = [{"style": s.style, "sample": s.number, "valid": s.valid, "bars_in_tokens": s.bars[0],
               "bars_in_score": s.bars[1]} for s in samples if not (s.valid and s.exact_bars)]
    return {"samples": count, "decodable": sum(s.valid for s in samples),
            "exact_bars": sum(s.exact_bars for s in samples), "failed": failed,
            "rate": sum(s.valid and s.exact_bars for s in samples) / count if count else float("nan")}
